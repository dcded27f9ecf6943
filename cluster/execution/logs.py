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


def open_append(path: Path) -> int:
    """A descriptor appending to ``path``; its folders are made only when missing."""
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT
    try:
        return os.open(path, flags, 0o644)
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(path, flags, 0o644)


def append_line(path: Path, message: str) -> None:
    """Append one of our own lines to a try's log, created with its folders.

    One ``write`` on a bare descriptor: a text file object costs several times that
    to build, and a no-op try writes three of these lines.
    """
    fd = open_append(path)
    try:
        os.write(fd, stamp(message).encode())
    finally:
        os.close(fd)


def announce_try(path: Path, message: TaskMessage, *, hostname: str) -> None:
    """The first line of every try's log: which try, where and in which process."""
    append_line(
        path,
        f"Running try {message.try_number} of {message.dag_id}.{message.task_id} "
        f"({message.run_id}) on {hostname}, pid {os.getpid()}",
    )
