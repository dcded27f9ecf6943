"""Whether a data-aware DAG's condition holds, and the dataset-triggered run it gets.

Pure, as the rest of :mod:`cluster.policy`: the loop loads the consumers that have
queued events (one query for all of them), their conditions from the serialized DAGs
and what their aliases resolve to, and asks :func:`plan_dataset_run`. Airflow 2.10's
rules: a consumer gets ONE run when its condition holds, consuming every queued row of
it; the run's logical date is the latest queue time; it sees the events of its
datasets after the previous dataset-triggered run's logical date.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cluster.sdk.datasets import condition_aliases, condition_uris, evaluate_condition

RUN_TYPE = "dataset_triggered"


@dataclass(frozen=True)
class DatasetRun:
    """A ``dataset_triggered`` run to create."""

    run_id: str
    logical_date: datetime


def condition_of(timetable: Mapping[str, Any]) -> dict[str, Any] | None:
    """The dataset condition of a serialized timetable; ``None`` when it waits on no data."""
    if timetable.get("type") in ("datasets", "datasets_or_time"):
        return dict(timetable["condition"])
    return None


def watched_uris(condition: Mapping[str, Any], aliases: Mapping[str, Sequence[str]]) -> list[str]:
    """The URIs a condition waits on: its own, then those its aliases resolved to."""
    uris = condition_uris(dict(condition))
    for name in condition_aliases(dict(condition)):
        uris.extend(u for u in aliases.get(name, ()) if u not in uris)
    return uris


def plan_dataset_run(
    dag_id: str,
    condition: Mapping[str, Any],
    queued: Mapping[str, datetime],
    aliases: Mapping[str, Sequence[str]],
) -> DatasetRun | None:
    """The run to create when the condition holds on the queued URIs, else ``None``."""
    statuses = dict.fromkeys(queued, True)
    if not queued or not evaluate_condition(dict(condition), statuses, dict(aliases)):
        return None
    logical_date = max(queued.values())
    return DatasetRun(f"{RUN_TYPE}__{logical_date.isoformat()}", logical_date)


def readiness(
    condition: Mapping[str, Any], queued: Sequence[str], aliases: Mapping[str, Sequence[str]]
) -> tuple[int, int]:
    """``(ready, total)`` of the datasets a consumer waits on, for "2 of 3 ready"."""
    uris = watched_uris(condition, aliases)
    return sum(1 for u in uris if u in set(queued)), len(uris)
