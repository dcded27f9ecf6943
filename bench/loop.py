"""Benchmark the scheduler's own metastore work, without running any task.

Runs the real scheduling loop in this process against a private MariaDB (or SQLite)
with an executor that claims and records each try as a success the moment it is
sent, exactly as the local executor's pump does, but without a worker. What is left
is the scheduler side of every task: the iteration that queues it, its claim and its
record. It prints CPU milliseconds per task (``server``: the MariaDB or PostgreSQL
server's, from /proc, the metastore's share of a task) and, with ``--profile``, the
functions that cost most. ``--run-tries`` runs each try in this process too, as a pool process
does, and prints the runner's CPU per try apart (``--profile`` then profiles the runner).
It never asserts on time.

    python bench/loop.py                          # MariaDB, chain_50 and fanout_1000_python
    python bench/loop.py --db sqlite --profile 25
    python bench/loop.py --db sqlite --shapes fanout_1000_python,fanout_10000
    python bench/loop.py --db sqlite --idle-dataset-dags 500 --half-ready
    python bench/loop.py --db sqlite --shapes fanout_1000_python,fanout_10000 --buckets 5
    python bench/loop.py --db mariadb --shapes fanout_10000 --buckets 5 --rows
    python bench/loop.py --db sqlite,mariadb --blocked 5000 [--rows]
    python bench/loop.py --db sqlite --shapes python_1000,python_1000 --run-tries --profile 30

``--buckets N`` prints each shape's per-iteration CPU by N buckets of finished tasks
(flat when an iteration's cost does not grow with the run's size); ``--rows`` adds the
metastore's work per iteration (bench/loop_growth.py says what is counted; it costs CPU,
so take CPU figures from a run without it).

``--blocked N`` measures instead an iteration beside 2 * (N - 1) scheduled tries that
none may be queued (a full pool, a DAG at its limit): bench/loop_blocked.py.

``--idle-dataset-dags N`` adds N consumers scheduled on ``Dataset(a_i) & Dataset(b)`` that
no task produces, and first prints the CPU of an iteration with nothing to do, once every
DAG has been planned; ``--half-ready`` queues an event of each ``a_i`` (each consumer then
waits for ``b``). With it, ``scheduler.poll_interval`` is 0, so every iteration is a full
one (run creation and the dataset step included), as an idle scheduler's once a second.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from cryptography.fernet import Fernet
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import Metastore, databases_from, metastore, parsed_and_fenced, tree_cpu
from loop_blocked import bench_blocked
from loop_growth import Growth, WorkCounter

from cluster import actions
from cluster.config import Settings, load_settings
from cluster.execution import recording
from cluster.execution.outcome import TryOutcome
from cluster.execution.pool import PoolBook, PoolRunner
from cluster.execution.worker import LocalPool
from cluster.executors.base import Dispatch
from cluster.messages import TaskMessage
from cluster.metastore.datasets import EventSpec, record_events
from cluster.metastore.engine import SessionFactory, transaction
from cluster.metastore.models import Dag
from cluster.scheduler.loop import SchedulerLoop
from cluster.states import TaskState
from tests.integration.scheduler_harness import FINISHED_RUN_STATES, run_state

DAG_FILE = """
from datetime import datetime
from cluster.sdk import DAG, chain, task
from cluster.operators.bash import BashOperator
from cluster.operators.python import PythonOperator

START = datetime(2024, 1, 1)

with DAG("chain_50", schedule=None, start_date=START, max_active_tasks=1000):
    chain(*[BashOperator(task_id=f"t{i:02d}", bash_command="true") for i in range(50)])

with DAG("fanout_1000_python", schedule=None, start_date=START, max_active_tasks=1000):
    for i in range(1000):
        BashOperator(task_id=f"t{i:04d}", bash_command="true")

with DAG("fanout_10000", schedule=None, start_date=START, max_active_tasks=10000):
    for i in range(10000):
        BashOperator(task_id=f"t{i:05d}", bash_command="true")

def noop():
    pass


with DAG("python_1000", schedule=None, start_date=START, max_active_tasks=1000):
    for i in range(1000):
        PythonOperator(task_id=f"t{i:04d}", python_callable=noop)

with DAG("map_1000_reduce", schedule=None, start_date=START, max_active_tasks=1000):

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
"""

#: what the instant executor reports for a try of the mapping shape's producer: its
#: pushed list, as the runner records it (``task_map`` length and the XCom)
PRODUCED = {"inputs": 1000}


class InstantExecutor:
    """Claims and records every try it is sent as a success, in the pump's batches.

    With a ``runner`` (``--run-tries``) each claimed try really runs, in this process,
    as a pool process runs it (minus the pipe), and its CPU is kept apart: what a try
    costs its worker, without the worker's share of the machine.
    """

    def __init__(self, book: PoolBook, slots: int, runner: PoolRunner | None = None) -> None:
        self._book = book
        self._slots = slots
        self._runner = runner
        self.tasks = 0
        self.runner_cpu = 0.0
        self.runner_profile: cProfile.Profile | None = None

    def start(self) -> None:
        pass

    def send(self, dispatches: list[Dispatch]) -> None:
        claimed = self._book.claim([(d.message, 1) for d in dispatches])
        if self._runner is not None:
            self._book.record([self._run(message, claim) for message, claim in claimed.items()])
            self.tasks += len(claimed)
            return
        now = datetime.now(UTC)
        finished = [
            recording.FinishedTry(
                claim, outcome(claim), TaskState.SUCCESS, None, now, "Bash", "bench", 1
            )
            for claim in claimed.values()
        ]
        self._book.record(finished)
        self.tasks += len(finished)

    def _run(self, message: TaskMessage, claim: recording.ClaimedTry) -> recording.FinishedTry:
        assert self._runner is not None
        started = time.process_time()
        if self.runner_profile:
            self.runner_profile.enable()
        finished = self._runner.run(message, claim, lambda timeout: None)
        if self.runner_profile:
            self.runner_profile.disable()
        self.runner_cpu += time.process_time() - started
        return finished

    def free_slots(self) -> int | None:
        return self._slots

    def stop(self, *, drain: bool) -> None:
        pass


def outcome(claim: recording.ClaimedTry) -> TryOutcome:
    """A success; the mapping shape's tries push return values as the runner would."""
    length = PRODUCED.get(claim.key.task_id)
    if length is not None:
        return TryOutcome(
            "success", xcoms=[("return_value", json.dumps(list(range(length))))], map_length=length
        )
    if claim.key.map_index >= 0:
        return TryOutcome("success", xcoms=[("return_value", str(claim.key.map_index))])
    return TryOutcome("success")


IDLE_DAGS = """
from datetime import datetime
from cluster.sdk import DAG, Dataset
from cluster.operators.empty import EmptyOperator

B = Dataset("s3://idle/b")
for i in range(@COUNT@):
    with DAG(f"idle_consumer_{i:04d}", schedule=Dataset(f"s3://idle/a{i}") & B,
             start_date=datetime(2024, 1, 1)):
        EmptyOperator(task_id="consume")
"""
#: the tries of each shape (the buckets of --buckets split them)
SIZES = {
    "chain_50": 50,
    "fanout_1000_python": 1000,
    "python_1000": 1000,
    "fanout_10000": 10000,
    "map_1000_reduce": 1002,
}
#: idle iterations measured
IDLE_ITERATIONS = 300


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default="mariadb", help="sqlite, mariadb or postgres")
    parser.add_argument("--shapes", default="chain_50,fanout_1000_python")
    parser.add_argument("--parallelism", type=int, default=32)
    parser.add_argument("--profile", type=int, default=0, help="print the N costliest functions")
    parser.add_argument("--idle-dataset-dags", type=int, default=None, help="dataset consumers")
    parser.add_argument("--half-ready", action="store_true", help="queue one of their datasets")
    parser.add_argument("--buckets", type=int, default=0, help="per-iteration CPU by N buckets")
    parser.add_argument("--rows", action="store_true", help="with --buckets: metastore work too")
    parser.add_argument("--blocked", type=int, default=0, help="tasks per blocked DAG")
    parser.add_argument(
        "--run-tries", action="store_true", help="run each try here, as a pool process does"
    )
    args = parser.parse_args()
    for db in databases_from(args.db):
        with (
            tempfile.TemporaryDirectory(prefix="tw-loop-bench-") as tmp,
            metastore(db, Path(tmp)) as store,
        ):
            if args.blocked:
                print(f"{db}:")
                settings = bench_settings(store, Path(tmp), args.parallelism, 1.0)
                # the held tries stay queued: never sent again while measured
                settings = settings.replace("scheduler", queued_timeout=86400.0)
                bench_blocked(settings, store.sessions(), Path(tmp), args.blocked, args.rows)
                continue
            idle = (
                (args.idle_dataset_dags, args.half_ready)
                if args.idle_dataset_dags is not None
                else None
            )
            growth = (args.buckets, args.rows) if args.buckets > 0 else None
            bench(
                store,
                Path(tmp),
                args.shapes.split(","),
                args.parallelism,
                args.profile,
                idle,
                growth,
                run_tries=args.run_tries,
            )


def bench(
    store: Metastore,
    base: Path,
    shapes: list[str],
    parallelism: int,
    profile: int,
    idle: tuple[int, bool] | None = None,
    growth: tuple[int, bool] | None = None,
    *,
    run_tries: bool = False,
) -> None:
    (base / "dags").mkdir()
    (base / "dags" / "shapes.py").write_text(DAG_FILE)
    if idle is not None:
        (base / "dags" / "idle.py").write_text(IDLE_DAGS.replace("@COUNT@", str(idle[0])))
    settings = bench_settings(store, base, parallelism, 0.0 if idle is not None else 1.0)
    sessions = store.sessions()
    counter = WorkCounter(sessions.kw["bind"]) if growth and growth[1] else None
    fence = parsed_and_fenced(sessions, base / "dags", timeout=60.0)
    runner = LocalPool(settings).runner() if run_tries else None
    assert runner is None or isinstance(runner, PoolRunner), "the runner could not start"
    executor = InstantExecutor(PoolBook(settings, sessions=sessions), parallelism, runner)
    loop = SchedulerLoop(settings, sessions=sessions, executor=executor, fence=fence)
    print(
        f"{'shape':<22}{'tasks':>7}{'iterations':>12}{'CPU ms/task':>13}{'user':>9}{'system':>9}"
        f"{'wall s':>9}{'server':>9}"
    )
    loop.run_once()  # loads every DAG into the loop's cache: not any shape's cost
    if idle is not None:
        idle_iterations(loop, sessions, *idle)
    for number, shape in enumerate(shapes):
        run_id = f"bench_{number}_{shape}"
        with sessions.begin() as session:
            actions.trigger(
                session, shape, actor=actions.Actor("bench"), run_id=run_id, now=datetime.now(UTC)
            )
        # with --run-tries the profile is the runner's alone (one profiler at a time)
        profiler = cProfile.Profile() if profile and runner is None else None
        executor.runner_profile = cProfile.Profile() if profile and runner else None
        executor.runner_cpu = 0.0
        executor.tasks = 0
        iterations = 0
        buckets = Growth(SIZES.get(shape, 1000), growth[0], counter) if growth else None
        times, wall = os.times(), time.perf_counter()
        server = tree_cpu(store.server_pids)
        if profiler:
            profiler.enable()
        while run_state(sessions, shape, run_id) not in FINISHED_RUN_STATES:
            loop.run_once()
            iterations += 1
            if buckets:
                buckets.iterated(executor.tasks)
        if profiler:
            profiler.disable()
        after, wall = os.times(), time.perf_counter() - wall
        server = tree_cpu(store.server_pids) - server
        user, system = after.user - times.user, after.system - times.system
        tasks = max(executor.tasks, 1)
        scheduler_cpu = user + system - executor.runner_cpu
        print(
            f"{shape:<22}{tasks:>7}{iterations:>12}{scheduler_cpu * 1000 / tasks:>13.2f}"
            f"{user * 1000 / tasks:>9.2f}{system * 1000 / tasks:>9.2f}{wall:>9.2f}"
            f"{f'{server * 1000 / tasks:.2f}' if store.server_pids else '-':>9}"
        )
        if runner:
            print(f"{'':<22}runner CPU ms/try {executor.runner_cpu * 1000 / tasks:.2f}")
            profiler = executor.runner_profile
        if buckets:
            buckets.print(shape)
        if profiler and os.environ.get("BENCH_PROFILE_FILE"):
            profiler.dump_stats(f"{os.environ['BENCH_PROFILE_FILE']}.{shape}")
        if profiler:
            pstats.Stats(profiler).sort_stats(
                os.environ.get("BENCH_SORT", "cumulative")
            ).print_stats(profile)


def bench_settings(store: Metastore, base: Path, parallelism: int, poll: float) -> Settings:
    return load_settings(
        env={},
        home=base,
        overrides={
            "core": {"fernet_key": Fernet.generate_key().decode(), "parallelism": parallelism},
            "metastore": {"url": store.url},
            "scheduler": {"poll_interval": poll},
        },
    )


def idle_iterations(
    loop: SchedulerLoop, sessions: SessionFactory, consumers: int, half_ready: bool
) -> None:
    """CPU of an iteration with nothing to run, beside ``consumers`` dataset consumers."""
    unplanned = select(func.count()).select_from(Dag).where(Dag.next_dagrun_create_after.is_(None))
    while True:  # new DAGs are planned a batch per iteration: not the idle cost
        loop.run_once()
        with sessions() as session:
            if not session.scalar(unplanned):
                break
    if half_ready:
        events = [EventSpec(uri=f"s3://idle/a{i}") for i in range(consumers)]
        transaction(sessions, lambda s: record_events(s, events, now=datetime.now(UTC)))
        loop.run_once()
    times = os.times()
    for _ in range(IDLE_ITERATIONS):
        loop.run_once()
    after = os.times()
    cpu = (after.user - times.user + after.system - times.system) * 1000 / IDLE_ITERATIONS
    ready = ", each with one of its two datasets queued" if half_ready else ""
    print(f"idle iteration: {cpu:.2f} ms CPU beside {consumers} dataset consumers{ready}")


if __name__ == "__main__":
    main()
