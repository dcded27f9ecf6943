"""Where each try writes its log, and the lines Tradewind adds to it.

``$TRADEWIND_HOME/logs/dag_id=…/run_id=…/task_id=…/attempt=N.log`` on the node that ran
the try; mapped instances add ``map_index=…``. The same layout is read by the log server.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from cluster.errors import UsageError


def log_path(
    base: Path, *, dag_id: str, run_id: str, task_id: str, try_number: int, map_index: int = -1
) -> Path:
    """The log file of one try; every part is checked so no path leaves ``base``."""
    parts = [f"dag_id={dag_id}", f"run_id={run_id}", f"task_id={task_id}"]
    if map_index >= 0:
        parts.append(f"map_index={map_index}")
    for part in parts:
        if "/" in part or "\x00" in part or part.split("=", 1)[1] in ("", ".", ".."):
            raise UsageError(f"invalid log path component: {part!r}")
    return base.joinpath(*parts, f"attempt={try_number}.log")


def stamp(message: str, *, source: str = "tradewind") -> str:
    """One log line in the format of every line Tradewind itself writes."""
    now = datetime.now(UTC).isoformat(timespec="milliseconds")
    return f"[{now}] {{{source}}} {message}\n"


def append_line(path: Path, message: str) -> None:
    """Append one of our own lines to a try's log (created with its folders)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        handle.write(stamp(message))
