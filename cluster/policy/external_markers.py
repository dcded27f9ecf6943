"""Where a recursive clear goes next: the ``ExternalTaskMarker`` tasks of a DAG and the
logical date each one names in its other DAG.

Pure: the serialized DAG and the run's dates in, targets out. A marker's
``execution_date`` is a template (by default the run's own logical date); it is
rendered here with the run's dates, in a sandbox, as Airflow renders it when clearing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import jinja2.sandbox

from cluster.dagfiles.serialized import SerializedDag
from cluster.errors import UsageError

_ENV = jinja2.sandbox.SandboxedEnvironment(undefined=jinja2.StrictUndefined)


@dataclass(frozen=True)
class MarkerTarget:
    """One marker's other end: which task of which DAG, at which logical date."""

    marker_task_id: str
    dag_id: str
    task_id: str
    logical_date: datetime
    recursion_depth: int


def marker_targets(
    dag: SerializedDag,
    task_ids: set[str],
    logical_date: datetime,
    data_interval: tuple[datetime | None, datetime | None] = (None, None),
) -> list[MarkerTarget]:
    """The targets of the markers among ``task_ids`` for a run at ``logical_date``.

    :raises UsageError: when a marker's date does not render to an ISO date.
    """
    found = []
    for task_id in sorted(task_ids):
        task = dag.tasks.get(task_id)
        marker = task.extra.get("external_marker") if task is not None else None
        if not marker:
            continue
        when = render_marker_date(str(marker["execution_date"]), logical_date, data_interval)
        found.append(
            MarkerTarget(
                marker_task_id=task_id,
                dag_id=str(marker["dag_id"]),
                task_id=str(marker["task_id"]),
                logical_date=when,
                recursion_depth=int(marker["recursion_depth"]),
            )
        )
    return found


def render_marker_date(
    template: str,
    logical_date: datetime,
    data_interval: tuple[datetime | None, datetime | None] = (None, None),
) -> datetime:
    """The marker's ``execution_date`` rendered with the run's dates and parsed."""
    start, end = data_interval
    context = {
        "logical_date": logical_date,
        "execution_date": logical_date,
        "ds": logical_date.strftime("%Y-%m-%d"),
        "ts": logical_date.isoformat(),
        "data_interval_start": start or logical_date,
        "data_interval_end": end or logical_date,
    }
    try:
        text = _ENV.from_string(template).render(context) if "{" in template else template
        when = datetime.fromisoformat(text.strip())
    except (jinja2.TemplateError, ValueError) as exc:
        raise UsageError(
            f"ExternalTaskMarker execution_date {template!r} does not give a date: {exc}"
        ) from exc
    if when.tzinfo is None:
        raise UsageError(f"ExternalTaskMarker execution_date {template!r} has no time zone")
    return when


#: one task instance a clear selected: run id, task id, logical date, data interval
Instance = tuple[str, str, datetime, tuple[datetime | None, datetime | None]]


def follow_markers(
    dag: SerializedDag,
    instances: list[Instance],
    visited: set[tuple[str, str, str]],
    depth: int,
    limit: list[int],
) -> list[MarkerTarget]:
    """The marker targets of ``instances`` not visited yet, at ``depth`` of a recursive
    clear. ``limit`` holds the first marker's ``recursion_depth`` once one was seen (as
    Airflow, the first marker visited fixes the limit of the whole clear).

    :raises UsageError: when following them would go past the limit.
    """
    targets = []
    for run_id, task_id, when, interval in instances:
        for target in marker_targets(dag, {task_id}, when, interval):
            if (dag.dag_id, run_id, task_id) in visited:
                continue
            visited.add((dag.dag_id, run_id, task_id))
            if not limit:
                limit.append(target.recursion_depth)
            if depth + 1 > limit[0]:
                raise UsageError(
                    f"Maximum recursion depth {limit[0]} reached for ExternalTaskMarker "
                    f"{task_id}. Attempted to clear too many tasks or there may be a "
                    "cyclic dependency."
                )
            targets.append(target)
    return targets
