"""The lines Tradewind adds to a try's log (the layout is :mod:`cluster.logserver.paths`)."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

from cluster.messages import TaskMessage

_APPEND = os.O_WRONLY | os.O_APPEND | os.O_CREAT


def stamp(message: str, *, source: str = "tradewind") -> str:
    """One log line in the format of every line Tradewind itself writes."""
    now = datetime.now(UTC).isoformat(timespec="milliseconds")
    return f"[{now}] {{{source}}} {message}\n"


def open_append(path: Path) -> int:
    """A descriptor appending to ``path``, an existing try's log; its folders are made
    only when missing (the book's lines go to logs the runner already wrote)."""
    try:
        return os.open(path, _APPEND, 0o644)
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(path, _APPEND, 0o644)


def open_try_log(path: Path) -> int:
    """A descriptor appending to a try's log, its folder made first.

    A try's folder is usually new (a mapped instance's ``map_index=N``, a task's first
    try in a run): making it first spares the failed open that :func:`open_append`
    pays for it, and where it exists (a retry) a failed ``mkdir`` costs what that open
    would have. Nothing is cached, so folders removed by log cleanup are made again.
    """
    folder = path.parent
    try:
        os.mkdir(folder)
    except FileExistsError:
        pass
    except FileNotFoundError:  # the run's folder is new too
        folder.mkdir(parents=True, exist_ok=True)
    return os.open(path, _APPEND, 0o644)


def write_line(fd: int, message: str) -> None:
    """Write one of our own lines to an open try's log, in one ``write`` on a bare
    descriptor (a text file object costs several times that to build)."""
    os.write(fd, stamp(message).encode())


def append_line(path: Path, message: str) -> None:
    """Append one of our own lines to a try's log, created with its folders."""
    fd = open_append(path)
    try:
        write_line(fd, message)
    finally:
        os.close(fd)


def announcement(message: TaskMessage, *, hostname: str) -> str:
    """The first line of every try's log: which try, where and in which process."""
    return (
        f"Running try {message.try_number} of {message.dag_id}.{message.task_id} "
        f"({message.run_id}) on {hostname}, pid {os.getpid()}"
    )
