"""Reading the log of one try for the task instance page, from any byte offset.

Each try logs to ``logs/dag_id=…/run_id=…/task_id=…/attempt=N.log`` on the node that
ran it. :func:`fetch_log` reads the file when it is on this machine (this webserver's
host ran the try, or the folder is shared); otherwise the log lives on the worker
recorded on the try. Fetching it from that worker's log server (port 8793, HMAC-signed
requests) arrives with the worker log server: until then :func:`fetch_remote` says
plainly where the log is, and it is the one function to change.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cluster.config import Settings
from cluster.logserver.paths import log_path

#: the most one request returns; the page's script asks again from the new offset
CHUNK_BYTES = 256 * 1024

Source = Literal["local", "remote", "missing"]


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


def fetch_remote(settings: Settings, ref: TryRef, *, offset: int) -> LogChunk:
    """The log from the worker that ran the try (not served yet: say so plainly)."""
    return LogChunk(
        text="",
        offset=offset,
        next_offset=offset,
        source="remote",
        message=f"The log is on host {ref.hostname} and cannot be fetched yet.",
        host=ref.hostname,
    )


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
