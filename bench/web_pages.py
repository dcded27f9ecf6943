"""Server time per page of the web UI: the views that must stay fast as a cluster grows.

``python bench/web.py --charts`` seeds a metastore with :func:`seed_pages` and times each
page of :data:`PAGES` against one webserver (one gunicorn worker, no HAProxy) with one
client sending requests back to back: the wall time of each request on loopback is the
server's time. It prints p50, p90 and max, and the webserver's CPU per page; it never
asserts (targets are printed beside the figures).

What is seeded (on top of what is there): :data:`LIST_DAGS` DAGs with
:data:`RUNS_PER_DAG` daily runs each and the task instances of their latest two runs,
and one DAG, ``bench_gantt``, of :data:`GANTT_TASKS` tasks with :data:`GANTT_RUNS`
runs whose every task ran (every tenth retried once, so ``task_instance_history`` has
rows). The DAGs list is timed twice: as users mostly get it (the rows reused while the
change counters are unchanged) and rebuilt (a DAG's row changed before each request).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert, update
from sqlalchemy.orm import Session, sessionmaker

from cluster.dagfiles.serialized import SerializedDag, SerializedTask
from cluster.metastore.models import (
    Dag,
    DagRun,
    SerializedDagRow,
    TaskInstance,
    TaskInstanceHistory,
)

LIST_DAGS = 2_000
RUNS_PER_DAG = 30
TASKS = 10
GANTT_DAG = "bench_gantt"
GANTT_TASKS = 1_000
GANTT_RUNS = 25
START = datetime(2025, 1, 1, tzinfo=UTC)
#: rows per INSERT statement
CHUNK = 5_000


@dataclass(frozen=True)
class Page:
    label: str
    path: str
    #: the issue's target for the page's server time (ms), if it sets one
    target_ms: float | None = None
    #: change a DAG row before each request, so the DAGs list is rebuilt every time
    rebuild: bool = False


PAGES = (
    Page("DAGs list, 2,000 DAGs (rows reused)", "/", 200),
    Page("DAGs list, 2,000 DAGs (rebuilt)", "/", 200, rebuild=True),
    Page("DAGs list sorted by last run (rebuilt)", "/?sort=last_run&order=desc", 200, True),
    Page("DAGs list, page 20 (rebuilt)", "/?page=20", 200, rebuild=True),
    Page("Gantt of a 1,000-task run", f"/dags/{GANTT_DAG}/gantt", 300),
    Page("Task duration, 1,000 tasks x 25 runs", f"/dags/{GANTT_DAG}/duration"),
    Page("Calendar", "/dags/list_dag_0000/calendar"),
    Page("Cluster", "/cluster"),
)


def _dag(dag_id: str, tasks: int) -> SerializedDag:
    ids = [f"task_{i:04d}" for i in range(tasks)]
    return SerializedDag(
        dag_id=dag_id,
        fileloc=f"/dags/{dag_id}.py",
        timetable={"type": "null"},
        schedule="@daily",
        tasks={
            task_id: SerializedTask(task_id=task_id, operator="EmptyOperator") for task_id in ids
        },
    )


def _chunks(rows: Iterator[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == CHUNK:
            yield batch
            batch = []
    if batch:
        yield batch


def _run(dag_id: str, day: int, tasks_seconds: float) -> dict[str, Any]:
    when = START + timedelta(days=day)
    return {
        "dag_id": dag_id, "run_id": f"scheduled__{when:%Y-%m-%d}", "logical_date": when,
        "data_interval_start": when, "data_interval_end": when + timedelta(days=1),
        "run_type": "scheduled", "state": "failed" if day % 9 == 8 else "success",
        "conf": {}, "queued_at": when + timedelta(days=1),
        "start_date": when + timedelta(days=1),
        "end_date": when + timedelta(days=1, seconds=tasks_seconds + day % 7),
    }  # fmt: skip


def _ti(dag_id: str, day: int, task: int, spread: float) -> dict[str, Any]:
    begin = START + timedelta(days=day + 1, seconds=task * spread)
    return {
        "dag_id": dag_id, "run_id": f"scheduled__{START + timedelta(days=day):%Y-%m-%d}",
        "task_id": f"task_{task:04d}", "map_index": -1,
        "state": "failed" if (day + task) % 97 == 0 else "success",
        "try_number": 2 if task % 10 == 0 else 1, "operator": "EmptyOperator",
        "queued_at": begin - timedelta(seconds=0.5), "start_date": begin,
        "end_date": begin + timedelta(seconds=1 + task % 5), "duration": 1.0 + task % 5,
    }  # fmt: skip


def _history(dag_id: str, day: int, task: int) -> dict[str, Any]:
    when = START + timedelta(days=day + 1, seconds=task * 0.05 - 5)
    return {
        "dag_id": dag_id, "run_id": f"scheduled__{START + timedelta(days=day):%Y-%m-%d}",
        "task_id": f"task_{task:04d}", "map_index": -1, "try_number": 1, "state": "failed",
        "start_date": when, "end_date": when + timedelta(seconds=2), "duration": 2.0,
    }  # fmt: skip


def seed_pages(sessions: sessionmaker[Session]) -> None:
    """The DAGs of the list and the big DAG of the Gantt chart (see the module's text)."""
    dags = [_dag(f"list_dag_{n:04d}", TASKS) for n in range(LIST_DAGS)] + [
        _dag(GANTT_DAG, GANTT_TASKS)
    ]
    with sessions.begin() as session:
        for number, dag in enumerate(dags):
            session.add(
                Dag(dag_id=dag.dag_id, fileloc=dag.fileloc, is_paused=number % 3 == 0,
                    tags=[f"team{number % 5}"], owners=f"owner{number % 7}",
                    timetable_summary="@daily", next_dagrun=START + timedelta(days=400))
            )  # fmt: skip
            session.add(
                SerializedDagRow(dag_id=dag.dag_id, fileloc=dag.fileloc, data=dag.to_json(),
                                 fingerprint=dag.fingerprint())
            )  # fmt: skip
    list_ids = [d.dag_id for d in dags[:-1]]
    runs = (_run(d, day, 60) for d in list_ids for day in range(RUNS_PER_DAG))
    tis = (
        _ti(d, day, t, 6.0)
        for d in list_ids
        for day in range(RUNS_PER_DAG - 2, RUNS_PER_DAG)
        for t in range(TASKS)
    )
    gantt_runs = (_run(GANTT_DAG, day, 90) for day in range(GANTT_RUNS))
    gantt_tis = (_ti(GANTT_DAG, d, t, 0.05) for d in range(GANTT_RUNS) for t in range(GANTT_TASKS))
    history = (
        _history(GANTT_DAG, d, t) for d in range(GANTT_RUNS) for t in range(0, GANTT_TASKS, 10)
    )
    for model, rows in (
        (DagRun, runs),
        (DagRun, gantt_runs),
        (TaskInstance, tis),
        (TaskInstance, gantt_tis),
        (TaskInstanceHistory, history),
    ):
        for batch in _chunks(iter(rows)):
            with sessions.begin() as session:
                session.execute(insert(model), batch)


def touch_a_dag(sessions: sessionmaker[Session], turn: int) -> None:
    """Change a shown column of one DAG, so the change counters move and the list is rebuilt."""
    with sessions.begin() as session:
        session.execute(
            update(Dag).where(Dag.dag_id == "list_dag_0001").values(owners=f"owner-{turn}")
        )
