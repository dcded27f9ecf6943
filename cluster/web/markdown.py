"""A small, safe Markdown subset for ``doc_md``: no new dependency, no raw HTML.

Everything is escaped first; then headings (``#``), bullet lists (``-``, ``*``),
fenced code blocks, paragraphs, ``inline code``, ``**bold**``, ``*emphasis*`` and
``[links](https://…)`` (http, https and relative links only, so a DAG author cannot
smuggle a ``javascript:`` URL into the page).
"""

from __future__ import annotations

import re

from markupsafe import Markup, escape

_CODE = re.compile(r"`([^`]+)`")
_BOLD = re.compile(r"\*\*(.+?)\*\*")
_EM = re.compile(r"(?<![*\w])\*([^*\s][^*]*?)\*(?!\*)")
_LINK = re.compile(r"\[([^\]]+)\]\(((?:https?://|/)[^)\s]*)\)")
_HEADING = re.compile(r"^(#{1,6})\s+(.*)$")
_BULLET = re.compile(r"^\s*[-*]\s+(.*)$")


def render_markdown(source: str | None) -> Markup:
    """HTML for ``source``; every character of the input is escaped before formatting."""
    if not source:
        return Markup("")
    out: list[str] = []
    paragraph: list[str] = []
    items: list[str] = []
    code: list[str] | None = None

    def flush() -> None:
        if paragraph:
            out.append("<p>" + " ".join(_inline(line) for line in paragraph) + "</p>")
            paragraph.clear()
        if items:
            out.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in items) + "</ul>")
            items.clear()

    for line in source.splitlines():
        if line.strip().startswith("```"):
            if code is None:
                flush()
                code = []
            else:
                out.append("<pre><code>" + str(escape("\n".join(code))) + "</code></pre>")
                code = None
            continue
        if code is not None:
            code.append(line)
        elif heading := _HEADING.match(line):
            flush()
            level = len(heading.group(1))
            out.append(f"<h{level + 2}>{_inline(heading.group(2))}</h{level + 2}>")
        elif bullet := _BULLET.match(line):
            if paragraph:
                flush()
            items.append(bullet.group(1))
        elif not line.strip():
            flush()
        else:
            if items:
                flush()
            paragraph.append(line.strip())
    if code is not None:
        out.append("<pre><code>" + str(escape("\n".join(code))) + "</code></pre>")
    flush()
    return Markup("\n".join(out))


def _inline(text: str) -> str:
    html = str(escape(text))
    html = _CODE.sub(r"<code>\1</code>", html)
    html = _LINK.sub(r'<a href="\2" rel="nofollow noopener">\1</a>', html)
    html = _BOLD.sub(r"<strong>\1</strong>", html)
    return _EM.sub(r"<em>\1</em>", html)
