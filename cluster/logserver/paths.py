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

    Built as one string joined to ``base``: a pool process computes one per try, and
    joining five parts costs pathlib twice as much.

    :raises UsageError: for an id that would (``..``, ``/``, NUL).
    """
    for key, value in (("dag_id", dag_id), ("run_id", run_id), ("task_id", task_id)):
        if "/" in value or "\x00" in value or value in ("", ".", ".."):
            raise UsageError(f"invalid log path component: {f'{key}={value}'!r}")
    mapped = f"/map_index={map_index}" if map_index >= 0 else ""
    return base.joinpath(
        f"dag_id={dag_id}/run_id={run_id}/task_id={task_id}{mapped}/attempt={try_number}.log"
    )
