"""The layout of task logs, shared by the runner that writes them and the readers.

``$TRADEWIND_HOME/logs/dag_id=…/run_id=…/task_id=…/attempt=N.log`` on the node that ran
the try; mapped instances add ``map_index=…``. Pure (standard library and errors only),
so the web layer may import it.
"""

from __future__ import annotations

from pathlib import Path

from cluster.errors import UsageError


def log_path(
    base: Path, *, dag_id: str, run_id: str, task_id: str, try_number: int, map_index: int = -1
) -> Path:
    """The log file of one try; every part is checked so no path leaves ``base``.

    :raises UsageError: for an id that would (``..``, ``/``, NUL).
    """
    parts = [f"dag_id={dag_id}", f"run_id={run_id}", f"task_id={task_id}"]
    if map_index >= 0:
        parts.append(f"map_index={map_index}")
    for part in parts:
        if "/" in part or "\x00" in part or part.split("=", 1)[1] in ("", ".", ".."):
            raise UsageError(f"invalid log path component: {part!r}")
    return base.joinpath(*parts, f"attempt={try_number}.log")
