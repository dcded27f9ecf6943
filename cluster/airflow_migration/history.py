"""Copying one DAG's history: its runs, their task instances, tries, notes, task maps, XComs.

A run is the unit: a run Tradewind has already (same ``dag_id`` and ``run_id``, from an
earlier migration or its own scheduler) is kept as it is with everything under it, and
each batch of new runs is written with all its rows in one transaction. So an
interrupted migration resumes where it stopped and a second one adds nothing.

Airflow 2.10 keeps the current try in ``task_instance`` and the earlier ones in
``task_instance_history``; Tradewind keeps every try in its history, so the current
try is added there when it ran. Before 2.10 there is no history table: the failed tries
come from ``task_fail``. An instance Airflow had not finished (queued, running,
deferred, waiting for a reschedule) has no worker behind it any more: it is copied
as ``none``, so Tradewind's scheduler runs it again; one waiting for a retry keeps
``up_for_retry`` and is due at once.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from cluster.airflow_migration.report import Report
from cluster.airflow_migration.source import AirflowMetastore, json_text, load_conf, utc
from cluster.metastore.models import DagRun, TaskInstance, TaskInstanceHistory, TaskMap, XCom
from cluster.states import DagRunState, TaskState

#: Airflow's end and waiting states that Tradewind has under the same name; the others
#: (scheduled, queued, running, restarting, deferred, shutdown) had a worker or a
#: trigger that is gone
KEPT = frozenset(
    str(s)
    for s in (
        TaskState.NONE,
        TaskState.SUCCESS,
        TaskState.FAILED,
        TaskState.SKIPPED,
        TaskState.UPSTREAM_FAILED,
        TaskState.REMOVED,
        TaskState.UP_FOR_RETRY,
        TaskState.UP_FOR_RESCHEDULE,
    )
)
#: states in which a try ran to its end (so it has a history row)
TRIED = frozenset({"success", "failed", "skipped", "up_for_retry", "up_for_reschedule"})
RUN_STATES = frozenset(str(s) for s in DagRunState)
#: Airflow's ``run_type`` values; anything else (a plugin's) is shown as manual
RUN_TYPES = frozenset({"scheduled", "manual", "backfill", "dataset_triggered"})

TaskKey = tuple[str, str, str, int]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def run_row(run: dict[str, Any], note: str | None) -> dict[str, Any]:
    """Tradewind's ``dag_run`` row for Airflow's ``run``."""
    state = run["state"] if run["state"] in RUN_STATES else "failed"
    return {
        "dag_id": run["dag_id"],
        "run_id": run["run_id"],
        "logical_date": utc(run["execution_date"]),
        "data_interval_start": utc(run.get("data_interval_start")),
        "data_interval_end": utc(run.get("data_interval_end")),
        "run_type": run["run_type"] if run["run_type"] in RUN_TYPES else "manual",
        "state": state,
        "conf": load_conf(run.get("conf")) or {},
        "queued_at": utc(run.get("queued_at")),
        "start_date": utc(run.get("start_date")),
        "end_date": utc(run.get("end_date")),
        "last_scheduling_decision": utc(run.get("last_scheduling_decision")),
        "clear_number": run.get("clear_number") or 0,
        "note": note,
    }


def instance_row(
    ti: dict[str, Any], note: str | None, run_date: datetime | None = None
) -> dict[str, Any]:
    """Tradewind's ``task_instance`` row for Airflow's ``ti`` (unfinished → ``none``);
    ``run_date`` is its run's logical date (the scheduler's queueing order)."""
    state = ti["state"] if ti["state"] in KEPT else "none"
    end = utc(ti.get("end_date"))
    return {
        "dag_id": ti["dag_id"],
        "run_id": ti["run_id"],
        "run_logical_date": run_date,
        "task_id": ti["task_id"],
        "map_index": ti["map_index"],
        "try_number": max(ti["try_number"] or 0, 0),
        "max_tries": max(ti.get("max_tries") or 0, 0),
        "state": state,
        "pool": ti["pool"],
        "pool_slots": ti.get("pool_slots") or 1,
        "queue": ti.get("queue") or "default",
        "priority_weight": ti.get("priority_weight") or 1,
        "operator": ti.get("custom_operator_name") or ti.get("operator"),
        "start_date": utc(ti.get("start_date")),
        "end_date": end,
        "duration": ti.get("duration"),
        "queued_at": utc(ti.get("queued_dttm")),
        "hostname": ti.get("hostname") or None,
        "pid": ti.get("pid"),
        # a retry Airflow would have started after retry_delay is due now
        "next_try_at": end if state in ("up_for_retry", "up_for_reschedule") else None,
        "sensor_started_at": utc(ti.get("start_date")) if state == "up_for_reschedule" else None,
        "rendered_map_index": ti.get("rendered_map_index"),
        "note": note,
    }


def key_of(row: dict[str, Any]) -> TaskKey:
    return (row["dag_id"], row["run_id"], row["task_id"], row["map_index"])


def try_rows(
    instances: list[dict[str, Any]],
    history: list[dict[str, Any]] | None,
    fails: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    """Every try of ``instances`` as Tradewind's history rows, in try order.

    :param history: Airflow's ``task_instance_history`` rows (``None``: no such table,
        before Airflow 2.10; then ``fails``, the ``task_fail`` rows, give the failed tries).
    """
    tries: dict[TaskKey, dict[int, dict[str, Any]]] = defaultdict(dict)
    if history is not None:
        for row in history:
            tries[key_of(row)][row["try_number"]] = _try(row, row["try_number"], row["state"])
    else:
        for key, rows in _by_key(fails).items():
            ordered = sorted(
                rows, key=lambda r: utc(r["start_date"]) or utc(r["end_date"]) or EPOCH
            )
            for number, row in enumerate(ordered, start=1):
                tries[key][number] = _try(row, number, "failed")
    for ti in instances:
        number = ti["try_number"] or 0
        ran = ti["state"] in TRIED and ti.get("start_date") is not None
        if ran and number >= 1 and number not in tries[key_of(ti)]:
            tries[key_of(ti)][number] = _try(ti, number, ti["state"])
    return [row for key in sorted(tries) for _, row in sorted(tries[key].items())]


def _try(row: dict[str, Any], number: int, state: str | None) -> dict[str, Any]:
    return {
        "dag_id": row["dag_id"],
        "run_id": row["run_id"],
        "task_id": row["task_id"],
        "map_index": row["map_index"],
        "try_number": number,
        "state": state if state in KEPT else "failed",
        "start_date": utc(row.get("start_date")),
        "end_date": utc(row.get("end_date")),
        "duration": row.get("duration"),
        "hostname": row.get("hostname") or None,
        "pid": row.get("pid"),
        "operator": row.get("custom_operator_name") or row.get("operator"),
    }


def _by_key(rows: Iterable[dict[str, Any]]) -> dict[TaskKey, list[dict[str, Any]]]:
    grouped: dict[TaskKey, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        grouped[key_of(row)].append(row)
    return grouped


def present_run_ids(session: Session, dag_id: str, run_ids: list[str]) -> set[str]:
    """Which of ``run_ids`` Tradewind has already."""
    query = select(DagRun.run_id).where(DagRun.dag_id == dag_id, DagRun.run_id.in_(run_ids))
    return set(session.scalars(query))


def copy_runs(
    source: AirflowMetastore,
    session: Session,
    *,
    runs: list[dict[str, Any]],
    run_notes: dict[int, str],
    report: Report,
    include_xcom: bool,
    write: bool,
) -> None:
    """Copy those of ``runs`` (all of one DAG) that Tradewind lacks, with every row under
    them; the rows of the others are counted as present."""
    if not runs:
        return
    dag_id, run_ids = runs[0]["dag_id"], [r["run_id"] for r in runs]
    present = present_run_ids(session, dag_id, run_ids)
    where = {"dag_id": dag_id, "run_id": run_ids}
    instances = source.rows("task_instance", **where)
    ti_notes = {key_of(n): n["content"] for n in source.rows("task_instance_note", **where)}
    history = source.rows("task_instance_history", **where) if source.has(
        "task_instance_history"
    ) else None  # fmt: skip
    fails = [] if history is not None else source.rows("task_fail", **where)
    dates = {r["run_id"]: utc(r["execution_date"]) for r in runs}
    rows = {
        "dag_runs": [run_row(r, run_notes.get(r["id"])) for r in runs],
        "task_instances": [
            instance_row(ti, ti_notes.get(key_of(ti)), dates.get(ti["run_id"])) for ti in instances
        ],
        "tries": try_rows(instances, history, fails),
        "task_maps": [_task_map(row) for row in source.rows("task_map", **where)],
        "xcoms": _xcoms(source, where, report) if include_xcom else [],
    }
    notes = [r for r in rows["dag_runs"] if r["note"]] + [
        r for r in rows["task_instances"] if r["note"]
    ]
    _count(report, "notes", notes, present)
    for table, values in rows.items():
        new = _count(report, table, values, present)
        if write and new:
            session.execute(insert(MODELS[table]), new)
    unfinished = [
        ti for ti in instances
        if ti["state"] is not None and ti["state"] not in KEPT and ti["run_id"] not in present
    ]  # fmt: skip
    if unfinished:
        report.notes.append(
            f"{dag_id}: {len(unfinished)} task instances Airflow had not finished are "
            "copied as 'none': Tradewind's scheduler runs them again"
        )


MODELS: dict[str, type] = {
    "dag_runs": DagRun,
    "task_instances": TaskInstance,
    "tries": TaskInstanceHistory,
    "task_maps": TaskMap,
    "xcoms": XCom,
}


def _count(
    report: Report, table: str, rows: list[dict[str, Any]], present: set[str]
) -> list[dict[str, Any]]:
    """Count ``rows`` as found, present (their run is) or added; return the added."""
    new = [r for r in rows if r["run_id"] not in present]
    count = report[table]
    count.found += len(rows)
    count.present += len(rows) - len(new)
    count.added += len(new)
    return new


def _task_map(row: dict[str, Any]) -> dict[str, Any]:
    keys = row.get("keys")
    return {
        "dag_id": row["dag_id"],
        "run_id": row["run_id"],
        "task_id": row["task_id"],
        "map_index": row["map_index"],
        "length": row["length"],
        "keys": keys if keys is None or isinstance(keys, str) else json.dumps(keys),
    }


def _xcoms(source: AirflowMetastore, where: dict[str, Any], report: Report) -> list[dict[str, Any]]:
    """The run's XComs whose value is JSON (Airflow's default serialization)."""
    copied = []
    for row in source.rows("xcom", **where):
        value = json_text(row["value"])
        if value is None and row["value"] is not None:
            report["xcoms"].skipped += 1
            report["xcoms"].found += 1
            continue
        copied.append(
            {
                "dag_id": row["dag_id"],
                "run_id": row["run_id"],
                "task_id": row["task_id"],
                "map_index": row["map_index"],
                "key": row["key"],
                "value": value,
                "timestamp": utc(row["timestamp"]),
            }
        )
    return copied
