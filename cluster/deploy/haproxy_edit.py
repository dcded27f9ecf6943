"""Adding and removing one backend server in an existing config, keeping everything else.

The edit is made on the text, line by line, so comments, blank lines, section order
and any settings of the operator's own survive byte for byte (pyhaproxy's renderer
would drop comments and reorder sections). pyhaproxy parses the text before the edit,
to find the backend and refuse a duplicate or missing server, and after it, to prove
the edit did what it says. :func:`write_config` replaces the file atomically, so
HAProxy never reads a half-written file.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from cluster.deploy.haproxy import BACKEND, Webserver, check_name, server_line
from cluster.deploy.haproxy_parse import parse_config
from cluster.errors import AlreadyExistsError, ConfigError, NotFoundError

#: the keywords that open a section in haproxy.cfg
SECTION_KEYWORDS = frozenset(
    {
        "global",
        "defaults",
        "frontend",
        "backend",
        "listen",
        "userlist",
        "peers",
        "resolvers",
        "mailers",
        "program",
        "http-errors",
        "ring",
        "cache",
    }
)
DEFAULT_INDENT = "    "


def add_server(
    text: str, server: Webserver, *, backend: str = BACKEND, source: str = "config"
) -> str:
    """``text`` with ``server NAME ADDRESS:PORT check`` added to ``backend``.

    The line goes after the backend's last ``server`` line, or at the end of the
    section when it has none, with the same indentation.

    :raises NotFoundError: no such backend.
    :raises AlreadyExistsError: the backend has a server of that name.
    :raises ConfigError: the text cannot be parsed.
    """
    section = parse_config(text, source=source).backend(backend)
    if section is None:
        raise NotFoundError(f"{source} has no backend {backend!r}")
    if any(s.name == server.name for s in section.servers):
        raise AlreadyExistsError(f"backend {backend!r} already has a server {server.name!r}")
    lines = text.splitlines(keepends=True)
    start, end = _section_span(lines, backend, source)
    servers = [i for i in range(start + 1, end) if _is_server(lines[i])]
    if servers:
        at, indent = servers[-1] + 1, _indent(lines[servers[-1]])
    else:
        at = _last_setting(lines, start, end) + 1
        indent = _indent(lines[at - 1]) if at - 1 > start else DEFAULT_INDENT
    if at > 0 and not lines[at - 1].endswith("\n"):
        lines[at - 1] += "\n"
    lines.insert(at, f"{indent}{server_line(server)}\n")
    edited = "".join(lines)
    after = parse_config(edited, source=source).backend(backend)
    if after is None or not any(s.name == server.name for s in after.servers):
        raise ConfigError(f"{source}: adding server {server.name!r} did not take (please report)")
    return edited


def remove_server(text: str, name: str, *, backend: str = BACKEND, source: str = "config") -> str:
    """``text`` without the ``server`` line called ``name`` in ``backend``.

    :raises NotFoundError: no such backend, or no such server in it.
    :raises ConfigError: the text cannot be parsed.
    """
    check_name(name, what="server name")
    section = parse_config(text, source=source).backend(backend)
    if section is None:
        raise NotFoundError(f"{source} has no backend {backend!r}")
    if not any(s.name == name for s in section.servers):
        known = ", ".join(s.name for s in section.servers) or "none"
        raise NotFoundError(f"backend {backend!r} has no server {name!r} (servers: {known})")
    lines = text.splitlines(keepends=True)
    start, end = _section_span(lines, backend, source)
    kept = [
        line
        for i, line in enumerate(lines)
        if not (start < i < end and _is_server(line) and line.split()[1] == name)
    ]
    edited = "".join(kept)
    after = parse_config(edited, source=source).backend(backend)
    if after is None or any(s.name == name for s in after.servers):
        raise ConfigError(f"{source}: removing server {name!r} did not take (please report)")
    return edited


def write_config(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` atomically, keeping the file's permissions.

    :raises ConfigError: the directory cannot be written.
    """
    try:
        mode = path.stat().st_mode & 0o7777 if path.exists() else 0o644
        fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.chmod(temp_name, mode)
        os.replace(temp_name, path)
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc}") from exc


def _section_span(lines: list[str], backend: str, source: str) -> tuple[int, int]:
    """``(header index, index after the last line)`` of backend or listen ``backend``."""
    header = re.compile(rf"^\s*(backend|listen)\s+{re.escape(backend)}(\s|$)")
    for start, line in enumerate(lines):
        if header.match(line):
            end = start + 1
            while end < len(lines) and not _opens_section(lines[end]):
                end += 1
            return start, end
    raise NotFoundError(f"{source} has no backend {backend!r}")


def _opens_section(line: str) -> bool:
    words = line.split()
    return bool(words) and words[0] in SECTION_KEYWORDS


def _is_server(line: str) -> bool:
    words = line.split()
    return len(words) >= 3 and words[0] == "server"


def _last_setting(lines: list[str], start: int, end: int) -> int:
    """The index of the section's last line that is neither blank nor a comment."""
    for i in range(end - 1, start, -1):
        stripped = lines[i].strip()
        if stripped and not stripped.startswith("#"):
            return i
    return start


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip())] or DEFAULT_INDENT
