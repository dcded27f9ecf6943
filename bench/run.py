"""Benchmark the hot path: scheduler, executor and runner, end to end on this machine.

Runs a real ``tradewind scheduler`` against SQLite, a private MariaDB and/or a private
PostgreSQL (started by the tests' own code, tests/databases.py), with the local executor
or with Celery (a private RabbitMQ node and ``--workers`` real ``tradewind worker``
processes), triggers each shape once and reads every figure from the metastore's own
timestamps. It prints figures and never asserts on time.

    python bench/run.py                       # SQLite and MariaDB, every shape
    python bench/run.py --db mariadb,postgres # one after the other, in one run
    python bench/run.py --db all              # SQLite, MariaDB and PostgreSQL
    python bench/run.py --db mariadb --seed-history 1000000 --shapes chain_50
    python bench/run.py --db postgres --executor celery --workers 2 --concurrency 8
    python bench/run.py --db postgres --shapes fanout_200 --runs 4

A shape's first run is a cold one: each pool process that takes its tries imports the
DAG file first (and a fresh scheduler compiles its statements). ``--runs N`` runs each
shape N times in a row, printing each run, so the steady state shows beside it.

Before each run it times a fixed Python loop (``machine: fixed loop N ms``, lower is
faster): on a shared VM every figure moves with the machine's speed of the moment, so
compare runs whose loops took about as long. It also times making a folder and a file,
as each try does for its log (``new log file N µs``): on some file systems that costs
ten times more for minutes after a large deletion, and the workers' CPU with it. So
the benchmark deletes its trees only after the last run, and a round of benchmarks
should leave the file system a few minutes between invocations.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import insert, select
from sqlalchemy.orm import Session, sessionmaker

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (
    Metastore,
    cpu_split,
    databases_from,
    loop_ms,
    metastore,
    new_log_file_us,
    start,
    stop,
    tradewind_env,
    wait_for,
)

from cluster import actions
from cluster.metastore.models import Dag, DagRun, TaskInstance
from tests.integration.celery_harness import port_free_on, start_rabbitmq
from tests.integration.scheduler_harness import FINISHED_RUN_STATES, run_state

SHAPES = ("chain_50", "fanout_200", "fanout_1000_python", "map_1000_reduce")

#: one file per shape, as DAGs usually live: a worker running a shape imports only its own
DAG_FILES = {
    "chain_50": """
from datetime import datetime
from cluster.sdk import DAG, chain
from cluster.operators.bash import BashOperator

with DAG("chain_50", schedule=None, start_date=datetime(2024, 1, 1), max_active_tasks=1000):
    chain(*[BashOperator(task_id=f"t{i:02d}", bash_command="true") for i in range(50)])
""",
    "fanout_200": """
from datetime import datetime
from cluster.sdk import DAG
from cluster.operators.bash import BashOperator

with DAG("fanout_200", schedule=None, start_date=datetime(2024, 1, 1), max_active_tasks=1000):
    start = BashOperator(task_id="start", bash_command="true")
    end = BashOperator(task_id="end", bash_command="true")
    start >> [BashOperator(task_id=f"t{i:03d}", bash_command="true") for i in range(200)] >> end
""",
    "fanout_1000_python": """
from datetime import datetime
from cluster.sdk import DAG
from cluster.operators.python import PythonOperator


def noop():
    return None


with DAG(
    "fanout_1000_python", schedule=None, start_date=datetime(2024, 1, 1), max_active_tasks=1000
):
    for i in range(1000):
        PythonOperator(task_id=f"t{i:04d}", python_callable=noop, do_xcom_push=False)
""",
    "map_1000_reduce": """
from datetime import datetime
from cluster.sdk import DAG, task

with DAG("map_1000_reduce", schedule=None, start_date=datetime(2024, 1, 1), max_active_tasks=1000):
    @task
    def inputs():
        return list(range(1000))

    @task
    def square(x):
        return x * x

    @task
    def total(values):
        return sum(values)

    total(square.expand(x=inputs()))
""",
}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--db",
        default="both",
        help="comma-separated: sqlite, mariadb, postgres; or both (sqlite,mariadb) or all",
    )
    parser.add_argument("--shapes", default=",".join(SHAPES))
    parser.add_argument("--parallelism", type=int, default=32)
    parser.add_argument("--executor", choices=["local", "celery"], default="local")
    parser.add_argument("--workers", type=int, default=2, help="Celery workers (--executor celery)")
    parser.add_argument("--concurrency", type=int, default=8, help="processes per Celery worker")
    parser.add_argument(
        "--seed-history", type=int, default=0, help="finished task instances to add first"
    )
    parser.add_argument("--runs", type=int, default=1, help="runs of each shape, one after another")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    shapes = [s for s in args.shapes.split(",") if s]
    unknown = set(shapes) - set(SHAPES)
    if unknown:
        parser.error(f"unknown shapes: {', '.join(sorted(unknown))}")
    # every tree is deleted at the end: a deletion would slow the file system under the
    # next database's runs (see harness.new_log_file_us)
    with ExitStack() as cleanup:
        for db in databases_from(args.db):
            tmp = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="tw-bench-")))
            with (
                metastore(db, tmp, cleanup=cleanup) as store,
                executor(args, tmp) as (executor_env, start_workers),
            ):
                bench_database(
                    store,
                    tmp,
                    shapes,
                    args.parallelism,
                    args.seed_history,
                    runs=args.runs,
                    executor_env=executor_env,
                    start_workers=start_workers,
                )


@contextmanager
def executor(
    args: argparse.Namespace, tmp: Path
) -> Iterator[tuple[dict[str, str], Callable[[dict[str, str]], list[subprocess.Popen[bytes]]]]]:
    """Settings for the chosen executor, and what starts its workers (none for local)."""
    if args.executor == "local":
        yield {}, lambda env: []
        return
    broker = start_rabbitmq(tmp / "rabbitmq", nodes=1)
    addresses = [f"127.0.1.{20 + n}" for n in range(1, args.workers + 1)]
    settings = {
        "TRADEWIND__CORE__EXECUTOR": "celery",
        "TRADEWIND__CELERY__BROKER_URLS": json.dumps(broker.urls),
        "TRADEWIND__WEBSERVER__SECRET_KEY": "bench-secret",
        "TRADEWIND__LOGGING__LOG_SERVER_PORT": str(port_free_on(addresses)),
    }

    def start_workers(env: dict[str, str]) -> list[subprocess.Popen[bytes]]:
        # BENCH_WORKER_LOGS=DIR keeps each worker's output there
        logs = os.environ.get("BENCH_WORKER_LOGS")
        return [
            start(
                ["worker", "-c", str(args.concurrency), "--hostname", address],
                env,
                log=Path(logs, f"worker-{address}.log") if logs else None,
            )
            for address in addresses
        ]

    try:
        yield settings, start_workers
    finally:
        broker.stop()


def bench_database(
    store: Metastore,
    home: Path,
    shapes: list[str],
    parallelism: int,
    seed: int,
    *,
    runs: int = 1,
    executor_env: dict[str, str],
    start_workers: Callable[[dict[str, str]], list[subprocess.Popen[bytes]]],
) -> None:
    (home / "dags").mkdir(parents=True, exist_ok=True)
    for shape, source in DAG_FILES.items():
        (home / "dags" / f"{shape}.py").write_text(source)
    db = store.kind
    sessions = store.sessions()
    if seed:
        started = time.perf_counter()
        seed_history(sessions, seed)
        print(
            f"[{db}] seeded {seed:,} finished task instances in {time.perf_counter() - started:.1f} s"
        )
    env = tradewind_env(home, store.url, parallelism=parallelism, **executor_env)
    scheduler = start(["scheduler"], env)
    workers = start_workers(env)
    roots = [scheduler.pid, *(w.pid for w in workers)]
    try:
        wait_for(lambda: parsed(sessions) >= len(SHAPES), 120, "DAGs parsed")
        kind = env.get("TRADEWIND__CORE__EXECUTOR", "local")
        celery = f", {len(workers)} Celery workers" if workers else ""
        print(f"\n{db}: {kind} executor, parallelism {parallelism}{celery}")
        print(
            f"{'shape':<20}{'tasks':>7}{'wall s':>9}{'tasks/s':>10}{'gap p50 ms':>12}{'gap p95 ms':>12}"
            f"{'q→run p50 ms':>14}{'try p50 ms':>12}{'end→queued p50':>16}{'gap mean':>10}"
            f"{'CPU ms/task':>13}"
        )
        for number, (shape, run) in enumerate(itertools.product(shapes, range(1, runs + 1))):
            # before the run: neither probe may take its CPU
            speed, new_file = loop_ms(), new_log_file_us(home / "probes" / str(number))
            before = cpu_split(roots, store.server_pids)
            figures = run_shape(sessions, shape)
            after = cpu_split(roots, store.server_pids)
            spent = {k: (after[k] - before[k]) * 1000 / figures["tasks"] for k in after}
            figures["cpu_per_task"] = sum(spent.values())
            print(format_row(shape if run == 1 else f"  run {run}", figures))
            print(
                f"{'':<20}CPU ms/task: scheduler {spent['scheduler']:.1f}, "
                f"workers {spent['workers']:.1f}, metastore {spent['metastore']:.1f}; "
                f"machine: fixed loop {speed:.0f} ms, new log file {new_file:.0f} µs"
            )
    finally:
        stop(scheduler, *workers)


def parsed(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        return len(session.scalars(select(Dag.dag_id)).all())


def seed_history(sessions: sessionmaker[Session], count: int, per_run: int = 1000) -> None:
    """Finished runs of a DAG that no longer exists: history the loop must not pay for."""
    when = datetime(2020, 1, 1, tzinfo=UTC)
    for number in range(0, count, per_run):
        run_id = f"seed__{number:09d}"
        with sessions.begin() as session:
            session.execute(
                insert(DagRun).values(
                    dag_id="seeded_history",
                    run_id=run_id,
                    logical_date=when,
                    run_type="scheduled",
                    state="success",
                    conf={},
                )
            )
            session.execute(
                insert(TaskInstance),
                [
                    {
                        "dag_id": "seeded_history",
                        "run_id": run_id,
                        "task_id": f"t{i}",
                        "map_index": -1,
                        "state": "success",
                        "try_number": 1,
                        "start_date": when,
                        "end_date": when,
                        "queued_at": when,
                    }
                    for i in range(min(per_run, count - number))
                ],
            )


def run_shape(sessions: sessionmaker[Session], shape: str) -> dict[str, float]:
    with sessions.begin() as session:
        run = actions.trigger(session, shape, actor=actions.Actor("bench"))
        run_id = run.run_id
    wait_for(
        lambda: run_state(sessions, shape, run_id) in FINISHED_RUN_STATES, 600, f"{shape} finished"
    )
    with sessions() as session:
        dag = actions.load_dag(session, shape)
        dag_run = session.scalars(
            select(DagRun).where(DagRun.dag_id == shape, DagRun.run_id == run_id)
        ).one()
        rows = list(
            session.scalars(
                select(TaskInstance).where(
                    TaskInstance.dag_id == shape, TaskInstance.run_id == run_id
                )
            )
        )
    # mapped tasks have several instances: an edge's gap counts from the upstream's last end
    last_end = {u: max(t.end_date for t in rows if t.task_id == u) for u in dag.tasks}
    wall = (dag_run.end_date - dag_run.start_date).total_seconds()
    edges = {(u, d) for u, task in dag.tasks.items() for d in task.downstream_task_ids}
    gaps = [
        (t.start_date - last_end[u]).total_seconds() * 1000
        for u, d in edges
        for t in rows
        if t.task_id == d
    ]
    to_queue = [
        (t.queued_at - last_end[u]).total_seconds() * 1000
        for u, d in edges
        for t in rows
        if t.task_id == d
    ]
    latency = [(t.start_date - t.queued_at).total_seconds() * 1000 for t in rows if t.queued_at]
    durations = [(t.end_date - t.start_date).total_seconds() * 1000 for t in rows if t.start_date]
    return {
        "tasks": len(rows),
        "wall": wall,
        "state": dag_run.state == "success",
        "gap50": pct(gaps, 50),
        "gap95": pct(gaps, 95),
        "lat50": pct(latency, 50),
        "dur50": pct(durations, 50),
        "sched50": pct(to_queue, 50),
        "mean_gap": statistics.fmean(gaps) if gaps else float("nan"),
    }


def pct(values: list[float], q: int) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def format_row(shape: str, r: dict[str, float]) -> str:
    flag = "" if r["state"] else "  (run FAILED)"
    return (
        f"{shape:<20}{int(r['tasks']):>7}{r['wall']:>9.2f}{r['tasks'] / r['wall']:>10.1f}"
        f"{r['gap50']:>12.1f}{r['gap95']:>12.1f}{r['lat50']:>14.1f}{r['dur50']:>12.1f}{r['sched50']:>16.1f}{r['mean_gap']:>10.1f}{r['cpu_per_task']:>13.1f}{flag}"
    )


if __name__ == "__main__":
    main()
