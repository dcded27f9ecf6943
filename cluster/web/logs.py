"""Reading the log of one try, from any byte offset, for the pages and the API alike.

Each try logs to ``logs/dag_id=…/run_id=…/task_id=…/attempt=N.log`` on the node that
ran it. :func:`fetch_log` reads the file when it is on this machine (this webserver's
host ran the try, or the folder is shared); otherwise :func:`fetch_remote` asks the
log server of the worker recorded on the try (``logging.log_server_port``) with a
request signed by :mod:`cluster.logserver.signing`, waiting at most
``webserver.log_fetch_timeout`` seconds. A worker that cannot be reached (down, name
unknown, port closed, too slow) or that refuses the request is not an error page: the
chunk says plainly which host and why, and the page keeps working.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Literal

from cluster.config import Settings
from cluster.logserver.paths import log_path
from cluster.logserver.signing import sign

#: the most one request returns; the page's script asks again from the new offset
CHUNK_BYTES = 256 * 1024

#: where a chunk came from; ``unreachable``: the worker's log server did not answer
Source = Literal["local", "remote", "missing", "unreachable"]
#: the response header with the offset of the next read (:mod:`cluster.logserver.server`)
OFFSET_HEADER = "X-Log-Offset"
#: log servers are reached directly, never through ``http_proxy`` from the environment
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass(frozen=True)
class LogChunk:
    """Log text from ``offset`` up to ``next_offset`` (bytes), or why there is none."""

    text: str
    offset: int
    next_offset: int
    source: Source
    message: str | None = None
    host: str | None = None


@dataclass(frozen=True)
class TryRef:
    """One try of one task instance, and the host that ran it (``None``: not started)."""

    dag_id: str
    run_id: str
    task_id: str
    try_number: int
    map_index: int = -1
    hostname: str | None = None


def log_file(base: Path, ref: TryRef) -> Path:
    """The log file of ``ref`` under ``base`` (:func:`cluster.logserver.paths.log_path`)."""
    return log_path(
        base,
        dag_id=ref.dag_id,
        run_id=ref.run_id,
        task_id=ref.task_id,
        try_number=ref.try_number,
        map_index=ref.map_index,
    )


def fetch_log(
    settings: Settings, ref: TryRef, *, offset: int = 0, limit: int = CHUNK_BYTES
) -> LogChunk:
    """The log of ``ref`` from byte ``offset``: local file, remote host, or a missing note."""
    path = log_file(settings.logging.base_log_folder, ref)
    if path.is_file():
        return read_local(path, offset=offset, limit=limit)
    if ref.hostname and ref.hostname != settings.core.hostname:
        return fetch_remote(settings, ref, offset=offset)
    return LogChunk(
        text="",
        offset=offset,
        next_offset=offset,
        source="missing",
        message=f"No log for try {ref.try_number} yet: it appears when the try starts.",
        host=ref.hostname,
    )


def log_server_url(settings: Settings, host: str) -> str:
    """``http://host:port`` of the log server on ``host`` (IPv6 addresses bracketed)."""
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{settings.logging.log_server_port}"


def fetch_remote(
    settings: Settings, ref: TryRef, *, offset: int, now: float | None = None
) -> LogChunk:
    """The log from the log server of the host that ran the try, from byte ``offset``.

    :param now: seconds since the epoch for the signature's expiry (tests).
    :returns: the text (``source="remote"``), or a chunk without text whose message
        names the host and the reason: ``unreachable`` when the server did not answer,
        ``missing`` when it has no such log, ``remote`` when it refused or failed.
    """
    host = ref.hostname or ""
    base = log_server_url(settings, host)
    relative = log_file(Path(), ref).as_posix()
    signed = sign(
        relative,
        key=settings.webserver.secret_key,
        now=time.time() if now is None else now,
        ttl=settings.logging.log_url_expiry,
    )
    try:
        with _OPENER.open(
            signed.url(base, offset=offset), timeout=settings.webserver.log_fetch_timeout
        ) as response:
            raw = response.read()
            end = int(response.headers.get(OFFSET_HEADER, offset + len(raw)))
    except urllib.error.HTTPError as exc:
        exc.close()
        return _refused(ref, base, exc.code, offset)
    except (OSError, ValueError) as exc:  # URLError, refused, unknown name, timeout
        reason = _reason(exc, settings.webserver.log_fetch_timeout)
        message = (
            f"The log of try {ref.try_number} is on host {host}, whose log server "
            f"({base}) cannot be reached: {reason}."
        )
        return LogChunk("", offset, offset, "unreachable", message, host)
    start = max(end - len(raw), 0)
    # the server may have cut a character in half: ask for its rest next time
    body = _whole_characters(raw)
    text = body.decode("utf-8", errors="replace")
    return LogChunk(text, start, start + len(body), "remote", host=host)


def _refused(ref: TryRef, base: str, status: int, offset: int) -> LogChunk:
    host = ref.hostname
    if status == HTTPStatus.NOT_FOUND:
        message = f"The log server on host {host} has no log for try {ref.try_number} (yet)."
        return LogChunk("", offset, offset, "missing", message, host)
    if status == HTTPStatus.FORBIDDEN:
        message = (
            f"The log server on host {host} refused the signed request: "
            "webserver.secret_key must be the same on every node, and clocks in step."
        )
    else:
        message = f"The log server on host {host} ({base}) answered HTTP {status}."
    return LogChunk("", offset, offset, "remote", message, host)


def _reason(exc: BaseException, timeout: float) -> str:
    """A short human reason for a failed connection (never the signed URL)."""
    cause = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(cause, TimeoutError):
        return f"no answer within {timeout:g} s"
    if isinstance(cause, OSError) and cause.strerror:
        return cause.strerror
    return str(cause) or type(cause).__name__


def read_local(path: Path, *, offset: int, limit: int = CHUNK_BYTES) -> LogChunk:
    """Up to ``limit`` bytes from ``offset``, cut before a half-written UTF-8 character."""
    with path.open("rb") as handle:
        size = handle.seek(0, 2)
        start = min(max(offset, 0), size)
        handle.seek(start)
        data = _whole_characters(handle.read(limit))
    text = data.decode("utf-8", errors="replace")
    return LogChunk(text=text, offset=start, next_offset=start + len(data), source="local")


def _whole_characters(data: bytes) -> bytes:
    """``data`` without a trailing incomplete UTF-8 sequence (the writer may be mid-line)."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte & 0xC0 == 0x80:  # a continuation byte: look further back for the lead
            continue
        if byte < 0x80:
            return data
        needed = 4 if byte >= 0xF0 else 3 if byte >= 0xE0 else 2
        return data[:-back] if back < needed else data
    return data
