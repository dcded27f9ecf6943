"""The lines Tradewind adds to a try's log (the layout is :mod:`cluster.logserver.paths`)."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

from cluster.messages import TaskMessage


def stamp(message: str, *, source: str = "tradewind") -> str:
    """One log line in the format of every line Tradewind itself writes."""
    now = datetime.now(UTC).isoformat(timespec="milliseconds")
    return f"[{now}] {{{source}}} {message}\n"


def append_line(path: Path, message: str) -> None:
    """Append one of our own lines to a try's log (created with its folders, which are
    made only when missing: most lines go to a log whose folder exists)."""
    try:
        handle = path.open("a")
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = path.open("a")
    with handle:
        handle.write(stamp(message))


def announce_try(path: Path, message: TaskMessage, *, hostname: str) -> None:
    """The first line of every try's log: which try, where and in which process."""
    append_line(
        path,
        f"Running try {message.try_number} of {message.dag_id}.{message.task_id} "
        f"({message.run_id}) on {hostname}, pid {os.getpid()}",
    )
