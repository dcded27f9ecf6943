"""The lines Tradewind adds to a try's log (the layout is :mod:`cluster.logserver.paths`)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path


def stamp(message: str, *, source: str = "tradewind") -> str:
    """One log line in the format of every line Tradewind itself writes."""
    now = datetime.now(UTC).isoformat(timespec="milliseconds")
    return f"[{now}] {{{source}}} {message}\n"


def append_line(path: Path, message: str) -> None:
    """Append one of our own lines to a try's log (created with its folders)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        handle.write(stamp(message))
