"""The grid's pages for bench/web.py: seed the two shapes the issue names and time them.

* ``bench_grid``: 200 tasks (ten task groups of 19 and ten tasks outside) x 25 runs;
* ``bench_mapped``: a task mapped 1,000 times in each of 25 runs, and a task after it;
* ``bench_fanout``: 10,000 parallel tasks in one run (issue 19: the grid of a
  10,000-task fan-out in <= 1 s of server time).

:func:`report_pages` sends each page ``repeat`` times, one request at a time on one
keep-alive connection straight to one webserver (no HAProxy), and prints the latency
(min, p50, p90: on loopback with one client this is the server's time) and the CPU the
webserver spent per page. Figures only, never asserted.
"""

from __future__ import annotations

import http.client
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select
from sqlalchemy.orm import Session, sessionmaker

from cluster.dagfiles.serialized import SerializedDag, SerializedTask
from cluster.metastore.models import Dag, DagRun, SerializedDagRow, TaskInstance

GRID_DAG, MAPPED_DAG, FANOUT_DAG = "bench_grid", "bench_mapped", "bench_fanout"
GRID_TASKS, GRID_RUNS, MAPPED, FANOUT = 200, 25, 1000, 10_000
START = datetime(2025, 1, 1, tzinfo=UTC)
_STATES = ("success",) * 12 + ("failed", "skipped", "upstream_failed", "running")


def grid_dag() -> SerializedDag:
    """200 tasks: ten outside any group, then ten groups of 19, each group a chain."""
    ids = [f"top_{i:02d}" for i in range(10)]
    ids += [f"group_{g}.task_{i:02d}" for g in range(10) for i in range(19)]
    tasks = {}
    for n, task_id in enumerate(ids):
        group = task_id.split(".")[0] if "." in task_id else None
        tasks[task_id] = SerializedTask(
            task_id=task_id,
            operator="EmptyOperator",
            upstream_task_ids=tuple(ids[n - 1 : n]),
            downstream_task_ids=tuple(ids[n + 1 : n + 2]),
            task_group_id=group,
        )
    groups = {f"group_{g}": {"parent": None} for g in range(10)}
    return _dag(GRID_DAG, tasks, groups)


def mapped_dag() -> SerializedDag:
    tasks = {
        "fan": SerializedTask(
            task_id="fan",
            operator="PythonOperator",
            downstream_task_ids=("after",),
            mapping={"kind": "dict-of-lists", "args": {}},
        ),
        "after": SerializedTask(
            task_id="after", operator="EmptyOperator", upstream_task_ids=("fan",)
        ),
    }
    return _dag(MAPPED_DAG, tasks, {})


def fanout_dag() -> SerializedDag:
    """10,000 tasks side by side, as bench/scale.py's fan-out of Python no-ops."""
    tasks = {
        f"t{i:05d}": SerializedTask(task_id=f"t{i:05d}", operator="PythonOperator")
        for i in range(FANOUT)
    }
    return _dag(FANOUT_DAG, tasks, {})


def _dag(dag_id: str, tasks: dict[str, SerializedTask], groups: dict[str, object]) -> SerializedDag:
    return SerializedDag(
        dag_id=dag_id,
        fileloc=f"/dags/{dag_id}.py",
        timetable={"type": "null"},
        schedule="@daily",
        tasks=tasks,
        task_groups=groups,
    )


def seed_grid(sessions: sessionmaker[Session]) -> None:
    """Both DAGs with their runs and task instances (skipped when already there)."""
    for dag, index_of, runs in (
        (grid_dag(), _unmapped, GRID_RUNS),
        (mapped_dag(), _mapped_indexes, GRID_RUNS),
        (fanout_dag(), _unmapped, 1),
    ):
        with sessions.begin() as session:
            if session.scalar(select(Dag.dag_id).where(Dag.dag_id == dag.dag_id)):
                continue
            session.add(Dag(dag_id=dag.dag_id, fileloc=dag.fileloc, is_paused=False))
            session.add(SerializedDagRow(dag_id=dag.dag_id, fileloc=dag.fileloc,
                                         data=dag.to_json(), fingerprint=dag.fingerprint()))  # fmt: skip
            session.execute(insert(DagRun), [_run(dag.dag_id, r, runs) for r in range(runs)])
            rows = [
                _ti(dag.dag_id, r, n, task_id, index)
                for r in range(runs)
                for n, task_id in enumerate(dag.tasks)
                for index in index_of(task_id)
            ]
            for start in range(0, len(rows), 5000):
                session.execute(insert(TaskInstance), rows[start : start + 5000])


def _unmapped(_task_id: str) -> list[int]:
    return [-1]


def _mapped_indexes(task_id: str) -> list[int]:
    return list(range(MAPPED)) if task_id == "fan" else [-1]


def _run(dag_id: str, number: int, runs: int) -> dict[str, object]:
    when = START + timedelta(days=number)
    last = number == runs - 1
    return {
        "dag_id": dag_id, "run_id": f"scheduled__{when.isoformat()}", "logical_date": when,
        "data_interval_start": when, "data_interval_end": when + timedelta(days=1),
        "run_type": "scheduled", "state": "running" if last else "success", "conf": {},
        "queued_at": when, "start_date": when,
        "end_date": None if last else when + timedelta(minutes=5 + number % 7),
    }  # fmt: skip


def _ti(dag_id: str, run: int, n: int, task_id: str, index: int) -> dict[str, object]:
    when = START + timedelta(days=run)
    return {
        "dag_id": dag_id, "run_id": f"scheduled__{when.isoformat()}", "task_id": task_id,
        "map_index": index, "state": _STATES[(run + n + max(index, 0)) % len(_STATES)],
        "try_number": 1, "operator": "EmptyOperator", "start_date": when,
        "end_date": when + timedelta(seconds=20), "duration": 20.0, "queued_at": when,
    }  # fmt: skip


def grid_pages() -> list[tuple[str, str]]:
    last = f"scheduled__{(START + timedelta(days=GRID_RUNS - 1)).isoformat()}"
    return [
        ("grid page, 200 tasks x 25 runs", f"/dags/{GRID_DAG}"),
        ("grid.json, 200 tasks x 25 runs", f"/dags/{GRID_DAG}/grid.json"),
        ("grid page, mapped 1,000 x 25 runs", f"/dags/{MAPPED_DAG}"),
        ("panel of the 1,000-mapped task", f"/dags/{MAPPED_DAG}/runs/{last}/tasks/fan/panel"),
        ("page of the 1,000-mapped task", f"/dags/{MAPPED_DAG}/runs/{last}/tasks/fan"),
        ("grid page, 10,000 tasks x 1 run", f"/dags/{FANOUT_DAG}"),
        ("grid.json, 10,000 tasks x 1 run", f"/dags/{FANOUT_DAG}/grid.json"),
    ]


def report_pages(
    host: str, port: int, headers: dict[str, str], cpu: Callable[[], float], repeat: int,
    database_cpu: Callable[[], float] | None = None,
) -> None:  # fmt: skip
    """Time each of :func:`grid_pages` ``repeat`` times after one warm-up request; with
    ``database_cpu``, also the database server's CPU per page (steadier than the wall
    time on a busy machine, as the webserver's is)."""
    connection = http.client.HTTPConnection(host, port, timeout=60)
    print(f"\ngrid pages, one client straight to webserver 1, {repeat} requests each:")
    for label, path in grid_pages():
        _get(connection, path, headers)  # warm-up: templates, caches
        latencies = []
        cpu_before = cpu()
        db_before = database_cpu() if database_cpu is not None else 0.0
        for _ in range(repeat):
            started = time.perf_counter()
            size = _get(connection, path, headers)
            latencies.append(time.perf_counter() - started)
        spent = (cpu() - cpu_before) * 1000 / repeat
        db = (database_cpu() - db_before) * 1000 / repeat if database_cpu is not None else None
        ms = sorted(x * 1000 for x in latencies)
        p90 = ms[int(len(ms) * 0.9) - 1] if len(ms) >= 10 else ms[-1]
        print(
            f"  {label:<36} min {ms[0]:>6.1f} ms   p50 {statistics.median(ms):>6.1f} ms"
            f"   p90 {p90:>6.1f} ms   web CPU {spent:>6.1f} ms/page"
            f"   database CPU {'n/a' if db is None else f'{db:.1f}'} ms/page   {size / 1024:>5.0f} KiB"
        )
    connection.close()


def _get(connection: http.client.HTTPConnection, path: str, headers: dict[str, str]) -> int:
    connection.request("GET", path, headers=headers)
    response = connection.getresponse()
    body = response.read()
    if response.status != 200:
        raise RuntimeError(f"GET {path}: HTTP {response.status} {body[:200]!r}")
    return len(body)
