"""bench/loop.py --blocked N: a scheduler iteration's cost beside a blocked backlog.

Two DAGs of N tasks each wait behind a limit that one queued try already fills:
``blocked_pool`` (its tasks in the pool ``narrow`` of one slot) and ``blocked_dag``
(``max_active_tasks=1``, in ``default_pool``). The executor keeps what it is sent
queued, so the slot and the DAG's one active task stay taken; every iteration after the
first two then finds ``2 * (N - 1)`` scheduled tries, none of which may be queued. It
prints the scheduler's CPU per iteration (and, with ``--rows``, the metastore's work per
iteration, bench/loop_growth.py) over :data:`ITERATIONS` such iterations. Before
queueing read past blocked tries, each iteration read the whole backlog.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

from harness import parsed_and_fenced
from loop_growth import WorkCounter
from sqlalchemy import func, select

from cluster import actions
from cluster.config import Settings
from cluster.executors.base import Dispatch
from cluster.metastore.engine import SessionFactory, transaction
from cluster.metastore.models import TaskInstance
from cluster.metastore.pools import set_pool
from cluster.scheduler.loop import SchedulerLoop
from cluster.states import TaskState

BLOCKED_DAGS = """
from datetime import datetime
from cluster.sdk import DAG
from cluster.operators.bash import BashOperator

START = datetime(2024, 1, 1)

with DAG("blocked_pool", schedule=None, start_date=START, max_active_tasks=100000):
    for i in range(@COUNT@):
        BashOperator(task_id=f"t{i:05d}", bash_command="true", pool="narrow")

with DAG("blocked_dag", schedule=None, start_date=START, max_active_tasks=1):
    for i in range(@COUNT@):
        BashOperator(task_id=f"t{i:05d}", bash_command="true")
"""
#: iterations measured once the backlog is blocked
ITERATIONS = 200


class HoldingExecutor:
    """Keeps every try it is sent ``queued``: the slots they hold stay taken."""

    def __init__(self, slots: int) -> None:
        self._slots = slots
        self.sent = 0

    def start(self) -> None:
        pass

    def send(self, dispatches: list[Dispatch]) -> None:
        self.sent += len(dispatches)

    def free_slots(self) -> int | None:
        return self._slots

    def stop(self, *, drain: bool) -> None:
        pass


def bench_blocked(
    settings: Settings, sessions: SessionFactory, base: Path, count: int, rows: bool
) -> None:
    """Print the CPU (and metastore work) of an iteration beside ``2 * count`` blocked tries."""
    (base / "blocked").mkdir()
    (base / "blocked" / "blocked.py").write_text(BLOCKED_DAGS.replace("@COUNT@", str(count)))
    transaction(sessions, lambda s: set_pool("narrow", 1, session=s))
    fence = parsed_and_fenced(sessions, base / "blocked", timeout=120.0)
    executor = HoldingExecutor(settings.core.parallelism)
    loop = SchedulerLoop(settings, sessions=sessions, executor=executor, fence=fence)
    now = datetime.now(UTC)
    with sessions.begin() as session:
        for dag_id in ("blocked_pool", "blocked_dag"):
            actions.trigger(session, dag_id, actor=actions.Actor("bench"), run_id="r", now=now)
    scheduled = select(func.count()).where(TaskInstance.state == TaskState.SCHEDULED)
    while True:  # the runs start, their tries are scheduled, one of each is queued
        loop.run_once()
        with sessions() as session:
            if executor.sent >= 2 and session.scalar(scheduled) == 2 * (count - 1):
                break
    counter = WorkCounter(sessions.kw["bind"]) if rows else None
    work = counter.read() if counter else 0.0
    times = os.times()
    for _ in range(ITERATIONS):
        loop.run_once()
    after = os.times()
    cpu = (after.user - times.user + after.system - times.system) * 1000 / ITERATIONS
    extra = ""
    if counter:
        extra = f", {(counter.read() - work) / ITERATIONS:.0f} {counter.unit}/iteration"
    print(
        f"blocked backlog of {2 * (count - 1)} tries (pool of 1 slot full, DAG at"
        f" max_active_tasks): {cpu:.2f} ms CPU/iteration{extra}; queued {executor.sent}"
    )
