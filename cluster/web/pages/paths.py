"""Paths of one endpoint for many values, built by ``url_for`` once and then concatenated.

A list page links every row to a few endpoints: the DAGs page alone needs some 1,400
links, and ``url_for`` (rule lookup, converters, URL defaults) cost over half of its
rendering time. A :class:`PathPattern` asks ``url_for`` once, with marker values in
the open arguments, and fills the markers by quoting each value exactly as werkzeug's
default (string) converter does, so the links are the same as ``url_for``'s.

Only path arguments quoted like the default converter's may stay open: an ``int``
argument, or a query argument, is built differently. The constructor checks this by
building one probe path both ways and refuses (``ValueError``) rather than build
wrong links.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from flask import url_for
from werkzeug.routing import BuildError

#: what werkzeug's default converter leaves unquoted in a path segment
#: (``werkzeug.routing.converters.BaseConverter.to_url``)
SAFE = "!$&'()*+,/:;=@"
_MARKER = "TWPATHARG{}X"
_MARKER_RE = re.compile(r"TWPATHARG(\d+)X")
#: values made only of these characters need no quoting (the common case: ids)
_NEEDS_NO_QUOTING = re.compile(r"[A-Za-z0-9_.~!$&'()*+,/:;=@-]*")
#: a value whose quoting tells the default converter from the others
_PROBE = "a b/c%d+e:f?g#h\u00e9"


class PathPattern:
    """The path of ``endpoint`` with the arguments ``open_args`` left to fill per call.

    :param fixed: arguments that are the same for every call (given to ``url_for``).
    :raises ValueError: when an open argument is not a default-converter path argument.
    """

    def __init__(self, endpoint: str, *open_args: str, **fixed: object) -> None:
        markers = {name: _MARKER.format(i) for i, name in enumerate(open_args)}
        built = _build(endpoint, {**fixed, **markers})
        self._pieces: list[str | int] = []
        position = 0
        for match in _MARKER_RE.finditer(built):
            self._pieces.append(built[position : match.start()])
            self._pieces.append(int(match.group(1)))
            position = match.end()
        self._pieces.append(built[position:])
        self._names = open_args
        self._check(endpoint, fixed)

    def _check(self, endpoint: str, fixed: dict[str, object]) -> None:
        probe = [_PROBE] * len(self._names)
        expected = _build(endpoint, {**fixed, **dict(zip(self._names, probe, strict=True))})
        if expected != self(*probe):
            raise ValueError(f"{endpoint}: {self._names} are not all default path arguments")

    def __call__(self, *values: object) -> str:
        """The path with ``values`` (in the order of the open arguments) filled in."""
        if len(values) != len(self._names):
            raise TypeError(f"expected values for {', '.join(self._names)}")
        return "".join(
            [
                piece if isinstance(piece, str) else quote_segment(values[piece])
                for piece in self._pieces
            ]
        )


def quote_segment(value: object) -> str:
    """``value`` quoted for a path as werkzeug's default converter quotes it."""
    text = str(value)
    return text if _NEEDS_NO_QUOTING.fullmatch(text) else quote(text, safe=SAFE)


def _build(endpoint: str, values: dict[str, Any]) -> str:
    try:
        return url_for(endpoint, **values)
    except (BuildError, ValueError) as exc:
        raise ValueError(f"cannot build a path pattern of {endpoint}: {exc}") from exc
