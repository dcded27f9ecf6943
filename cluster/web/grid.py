"""The grid view's data: the latest runs of a DAG by its tasks, each cell a state.

Two queries whatever the size (the runs, then their task instances); the page renders
it and ``grid.json`` serves the same data to the script that refreshes a live grid.
Mapped tasks show one cell summarising their instances (the most urgent state wins).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cluster.metastore.models import DagRun, TaskInstance
from cluster.states import DagRunState

#: runs shown in the grid, newest on the right
GRID_RUNS = 25
#: when a task has several (mapped) instances, the first state found here names the cell
_URGENCY = (
    "failed",
    "upstream_failed",
    "up_for_retry",
    "running",
    "queued",
    "scheduled",
    "up_for_reschedule",
    "none",
    "skipped",
    "success",
    "removed",
)
_ACTIVE = frozenset({DagRunState.QUEUED.value, DagRunState.RUNNING.value})


@dataclass(frozen=True)
class GridRun:
    run_id: str
    state: str
    run_type: str
    logical_date: datetime | None


@dataclass(frozen=True)
class Grid:
    """Runs oldest first, task ids in display order, and ``(task_id, run_id) → state``."""

    runs: list[GridRun]
    task_ids: list[str]
    states: dict[tuple[str, str], str]
    #: for a mapped task's cell: how many instances, and how many in each state
    mapped: dict[tuple[str, str], dict[str, int]] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        """Whether a run is queued or running: the page keeps refreshing while it is."""
        return any(run.state in _ACTIVE for run in self.runs)

    def state(self, task_id: str, run_id: str) -> str | None:
        return self.states.get((task_id, run_id))

    def mapped_summary(self, task_id: str, run_id: str) -> str | None:
        """``"3 mapped: 2 success, 1 failed"`` for a mapped task's cell, else ``None``."""
        counts = self.mapped.get((task_id, run_id))
        if not counts:
            return None
        parts = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
        return f"{sum(counts.values())} mapped: {parts}"

    def to_json(self) -> dict[str, Any]:
        by_task: dict[str, dict[str, str]] = {task_id: {} for task_id in self.task_ids}
        for (task_id, run_id), state in self.states.items():
            by_task.setdefault(task_id, {})[run_id] = state
        return {
            "active": self.active,
            "runs": [
                {
                    "run_id": r.run_id,
                    "state": r.state,
                    "run_type": r.run_type,
                    "logical_date": r.logical_date.isoformat() if r.logical_date else None,
                }
                for r in self.runs
            ],
            "task_ids": self.task_ids,
            "states": by_task,
            "mapped": {f"{t}|{r}": counts for (t, r), counts in self.mapped.items()},
        }


def load_grid(
    session: Session, dag_id: str, task_ids: list[str], *, limit: int = GRID_RUNS
) -> Grid:
    """The grid of ``dag_id``'s latest ``limit`` runs; tasks missing from ``task_ids``
    (removed from the DAG since) follow at the end."""
    rows = session.execute(
        select(DagRun.run_id, DagRun.state, DagRun.run_type, DagRun.logical_date)
        .where(DagRun.dag_id == dag_id)
        .order_by(DagRun.logical_date.desc(), DagRun.id.desc())
        .limit(limit)
    ).all()
    runs = [GridRun(*row) for row in reversed(rows)]
    found: dict[tuple[str, str], list[str]] = {}
    mapped: dict[tuple[str, str], Counter[str]] = {}
    if runs:
        instances = session.execute(
            select(
                TaskInstance.task_id,
                TaskInstance.run_id,
                TaskInstance.state,
                TaskInstance.map_index,
            ).where(
                TaskInstance.dag_id == dag_id,
                TaskInstance.run_id.in_([r.run_id for r in runs]),
            )
        )
        for task_id, run_id, state, map_index in instances:
            found.setdefault((task_id, run_id), []).append(state)
            if map_index >= 0:
                mapped.setdefault((task_id, run_id), Counter())[state] += 1
    known = set(task_ids)
    extra = sorted({task_id for task_id, _ in found if task_id not in known})
    return Grid(
        runs=runs,
        task_ids=[*task_ids, *extra],
        states={key: summarise(states) for key, states in found.items()},
        mapped={key: dict(counts) for key, counts in mapped.items()},
    )


def summarise(states: list[str]) -> str:
    """One state for a cell with several instances (mapped tasks)."""
    if len(states) == 1:
        return states[0]
    for state in _URGENCY:
        if state in states:
            return state
    return states[0]
