"""Harnesses for the scheduler tests: an in-process scheduler on a fake clock, and a real
``tradewind scheduler`` subprocess.

:class:`InProcessScheduler` wires a real :class:`SchedulerLoop` to a
:class:`SynchronousExecutor` that runs every dispatched message to its end, on the
local pool that runs scheduled tries in production, before ``send`` returns. Loop and
pool share one :class:`~tests.clocks.FakeClock`, so retry delays and reschedule dates
are crossed by moving the clock, never by sleeping.

:class:`SchedulerProcess` starts ``tradewind scheduler`` with its own home, metastore
and short intervals, and stops it (and every local worker process it forked) by PID.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from cluster import actions
from cluster.config import Settings
from cluster.dagfiles.processor import DagProcessor
from cluster.execution.worker import LocalPool
from cluster.executors.base import Dispatch
from cluster.executors.blocking import BlockingExecutor, TryResult
from cluster.messages import TaskMessage
from cluster.metastore.engine import transaction
from cluster.metastore.models import (
    DagRun,
    SerializedDagRow,
    TaskInstance,
    TaskInstanceHistory,
)
from cluster.scheduler.fencing import Fence
from cluster.scheduler.loop import SchedulerLoop
from cluster.states import DagRunState, TaskState
from tests.clocks import FakeClock
from tests.waiting import wait_for

T = TypeVar("T")

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "dags"
TEST_ACTOR = actions.Actor("pytest", source="test")
FINISHED_RUN_STATES = (DagRunState.SUCCESS, DagRunState.FAILED)
WAITING_STATES = (TaskState.UP_FOR_RETRY, TaskState.UP_FOR_RESCHEDULE)


# --- the in-process harness -----------------------------------------------------------


class SynchronousExecutor:
    """The Executor protocol, running each message to its end inside ``send``, on the
    pool that runs scheduled tries in production (one process, so in dispatch order).

    :ivar deliveries: how many times each message is delivered (2 simulates a broker
        that redelivers).
    :ivar results: every :class:`TryResult`, in the order the tries ended.
    :ivar held: when not ``None``, ``send`` only appends its messages here (they stay
        queued) and the test runs them with :meth:`release`: concurrency is then decided
        by the test, step by step, not by timing.
    """

    def __init__(self, runner: BlockingExecutor) -> None:
        self.runner = runner
        self.deliveries = 1
        self.results: list[TryResult] = []
        self.held: list[TaskMessage] | None = None

    def start(self) -> None:
        pass

    def send(self, dispatches: list[Dispatch]) -> None:
        messages = [d.message for d in dispatches for _ in range(self.deliveries)]
        if self.held is not None:
            self.held.extend(messages)
            return
        self.results.extend(self.runner.run(messages))

    def release(self, count: int = 1) -> list[TryResult]:
        """Run the ``count`` oldest held messages to their end."""
        assert self.held is not None, "release() needs held = [] first"
        messages, self.held[:count] = self.held[:count], []
        results = self.runner.run(messages)
        self.results.extend(results)
        return results

    def free_slots(self) -> int | None:
        return None

    def stop(self, *, drain: bool) -> None:
        pass

    def messages(self) -> list[TaskMessage]:
        return [r.message for r in self.results]


class InProcessScheduler:
    """A DAG processor, a fenced loop and a synchronous executor on one fake clock."""

    def __init__(
        self,
        settings: Settings,
        sessions: sessionmaker[Session],
        *,
        folders: list[Path],
        clock: FakeClock,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.clock = clock
        self.processor = DagProcessor(
            folders=folders, sessions=sessions, timeout=30.0, paused_at_creation=False
        )
        # the production pool on the test's metastore and clock (forked from pytest)
        self.runner = BlockingExecutor(LocalPool(settings, clock=clock), size=1)
        self.runner.start()
        self.executor = SynchronousExecutor(self.runner)
        fence = Fence(host="pytest")
        transaction(sessions, lambda s: fence.acquire(s, now=clock()))
        self.loop = SchedulerLoop(
            settings, sessions=sessions, executor=self.executor, fence=fence, clock=clock
        )

    def close(self) -> None:
        """Stop the pool process (call once, at the end of the test)."""
        self.runner.stop()

    def process_dags(self) -> None:
        report = self.processor.process()
        assert not report.errors, report.errors

    def trigger(self, dag_id: str, run_id: str) -> None:
        with self.sessions.begin() as session:
            actions.trigger(session, dag_id, actor=TEST_ACTOR, run_id=run_id, now=self.clock())

    def run_state(self, dag_id: str, run_id: str) -> str:
        with self.sessions() as session:
            return session.scalars(
                select(DagRun.state).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id)
            ).one()

    def next_wake_up(self) -> datetime | None:
        """The earliest time an instance waiting for a retry or a reschedule may go on."""
        with self.sessions() as session:
            return session.scalar(
                select(TaskInstance.next_try_at)
                .where(TaskInstance.state.in_([str(s) for s in WAITING_STATES]))
                .order_by(TaskInstance.next_try_at)
                .limit(1)
            )

    def run_until_finished(
        self, runs: list[tuple[str, str]], *, max_iterations: int = 60
    ) -> dict[tuple[str, str], str]:
        """Iterate until every run finished; when an iteration dispatched nothing, move the
        clock to the next wake-up (a retry or a reschedule), else by one second."""
        states: dict[tuple[str, str], str] = {}
        for _ in range(max_iterations):
            dispatched = self.loop.run_once()
            states = {run: self.run_state(*run) for run in runs}
            if all(state in FINISHED_RUN_STATES for state in states.values()):
                return states
            if not dispatched:
                wake = self.next_wake_up()
                if wake is not None and wake > self.clock():
                    self.clock.set(wake)
                else:
                    self.clock.advance(1)
        raise AssertionError(f"runs not finished after {max_iterations} iterations: {states}")


# --- reading the metastore ------------------------------------------------------------


def task_states(sessions: sessionmaker[Session], dag_id: str, run_id: str) -> dict[str, str]:
    with sessions() as session:
        rows = session.execute(
            select(TaskInstance.task_id, TaskInstance.state).where(
                TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id
            )
        ).all()
    return {task_id: state for task_id, state in rows}


def task_instances(sessions: sessionmaker[Session], dag_id: str, run_id: str) -> list[TaskInstance]:
    with sessions() as session:
        return list(
            session.scalars(
                select(TaskInstance).where(
                    TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id
                )
            )
        )


def history(
    sessions: sessionmaker[Session], dag_id: str, run_id: str, task_id: str | None = None
) -> list[TaskInstanceHistory]:
    query = select(TaskInstanceHistory).where(
        TaskInstanceHistory.dag_id == dag_id, TaskInstanceHistory.run_id == run_id
    )
    if task_id is not None:
        query = query.where(TaskInstanceHistory.task_id == task_id)
    with sessions() as session:
        return list(session.scalars(query.order_by(TaskInstanceHistory.id)))


def run_state(sessions: sessionmaker[Session], dag_id: str, run_id: str) -> str | None:
    with sessions() as session:
        return session.scalar(
            select(DagRun.state).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id)
        )


def max_overlap(intervals: list[tuple[datetime, datetime]]) -> int:
    """The largest number of ``[start, end)`` intervals that hold one instant in common."""
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    current = peak = 0
    for _, step in events:  # at equal times ends (-1) sort before starts (+1)
        current += step
        peak = max(peak, current)
    return peak


# --- the subprocess scheduler ---------------------------------------------------------


def cli_env(home: Path, metastore_url: str, fernet_key: str, **settings: Any) -> dict[str, str]:
    """The environment of every ``tradewind`` process of one test.

    ``settings`` are ``SECTION__KEY=value`` pairs, e.g. ``SCHEDULER__POLL_INTERVAL=0.2``.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADEWIND")}
    env.update(
        {
            "TRADEWIND_HOME": str(home),
            "TRADEWIND__METASTORE__URL": metastore_url,
            "TRADEWIND__CORE__FERNET_KEY": fernet_key,
            "TRADEWIND__CORE__LOAD_EXAMPLES": "false",
            "TRADEWIND__CORE__DAGS_ARE_PAUSED_AT_CREATION": "false",
            "TRADEWIND__SCHEDULER__POLL_INTERVAL": "0.2",
            "TRADEWIND__SCHEDULER__DAG_DIR_LIST_INTERVAL": "1",
            "TRADEWIND__SCHEDULER__HEARTBEAT_INTERVAL": "0.5",
            "TRADEWIND__SCHEDULER__ZOMBIE_THRESHOLD": "30",
            "PYTHONPATH": str(REPO),
        }
    )
    env.update({f"TRADEWIND__{k}": str(v) for k, v in settings.items()})
    return env


CLI = [sys.executable, "-m", "cluster.cli"]


def tradewind(env: dict[str, str], *args: str, timeout: float = 60) -> str:
    """Run one ``tradewind`` command to its end; fail the test with its stderr if it fails."""
    done = subprocess.run(
        [*CLI, *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, f"tradewind {' '.join(args)} → {done.returncode}: {done.stderr}"
    return done.stdout


def tradewind_json(env: dict[str, str], *args: str) -> Any:
    return json.loads(tradewind(env, *args, "-o", "json"))


def children_of(pid: int) -> list[int]:
    """Direct children of ``pid``, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = (entry / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == pid:
                found.append(int(entry.name))
    return found


def descendants_of(pid: int) -> list[int]:
    found: list[int] = []
    frontier = [pid]
    while frontier:
        kids = [c for p in frontier for c in children_of(p)]
        found.extend(kids)
        frontier = kids
    return found


def alive(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def kill_leftovers(pids: set[int]) -> None:
    """SIGKILL every PID of ``pids`` still alive, and wait until they are gone."""
    leftover = [pid for pid in sorted(pids) if alive(pid)]
    for pid in leftover:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    wait_for(
        lambda: not any(alive(pid) for pid in leftover),
        timeout=10,
        interval=0.05,
        message=f"processes {leftover} to end",
    )


class SchedulerProcess:
    """One ``tradewind scheduler`` subprocess, in a process group of its own."""

    def __init__(self, env: dict[str, str], log_file: Path) -> None:
        self.env = env
        self.log_file = log_file
        self.process: subprocess.Popen[bytes] | None = None
        #: every PID seen in its tree (scheduler, local workers, task children)
        self.seen: set[int] = set()

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> SchedulerProcess:
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(
                [*CLI, "scheduler"],
                env=self.env,
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def worker_pids(self) -> list[int]:
        """The local worker processes (children of the scheduler that run ``_worker_main``)."""
        pids = [p for p in children_of(self.pid) if alive(p)]
        self.seen.update(pids)
        return pids

    def remember_tree(self) -> None:
        if self.process is not None:
            self.seen.update(descendants_of(self.pid))

    def kill(self) -> None:
        """SIGKILL the scheduler alone (a crash); its workers are stopped in :meth:`stop`."""
        self.remember_tree()
        os.kill(self.pid, signal.SIGKILL)
        assert self.process is not None
        self.process.wait(10)

    def stop(self) -> None:
        """Stop the scheduler and everything it started, each by its PID."""
        if self.process is None:
            return
        self.remember_tree()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        kill_leftovers(self.seen)

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


#: the ``start_scheduler`` fixture: settings as ``SECTION__KEY=value`` keyword arguments
StartScheduler = Callable[..., SchedulerProcess]


# --- waiting on the metastore ---------------------------------------------------------


def wait_for_dags(
    sessions: sessionmaker[Session], dag_ids: set[str], *, timeout: float = 60
) -> None:
    def serialized() -> bool:
        with sessions() as session:
            found = set(session.scalars(select(SerializedDagRow.dag_id)))
        return dag_ids <= found

    wait_for(
        serialized, timeout=timeout, interval=0.2, message=f"DAGs {sorted(dag_ids)} serialized"
    )


def wait_for_run(
    sessions: sessionmaker[Session],
    dag_id: str,
    run_id: str,
    *,
    timeout: float,
    scheduler: SchedulerProcess | None = None,
) -> str:
    """Poll until the run finished; returns its state (the scheduler's log tail on timeout)."""

    def finished() -> str | None:
        state = run_state(sessions, dag_id, run_id)
        return state if state in FINISHED_RUN_STATES else None

    def describe() -> str:
        states = task_states(sessions, dag_id, run_id)
        tail = scheduler.log_tail() if scheduler is not None else ""
        return f"{dag_id} {run_id} to finish; task states {states}\n{tail}"

    return wait_for(finished, timeout=timeout, interval=0.2, message=describe)


def log_file(home: Path, dag_id: str, run_id: str, task_id: str, attempt: int = 1) -> Path:
    return (
        home
        / "logs"
        / f"dag_id={dag_id}"
        / f"run_id={run_id}"
        / f"task_id={task_id}"
        / f"attempt={attempt}.log"
    )


def processes_with_cmdline(argv: list[str]) -> list[int]:
    """Live processes whose command line is exactly ``argv``."""
    wanted = "\0".join(argv).encode() + b"\0"
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "cmdline").read_bytes() == wanted and alive(int(entry.name)):
                    found.append(int(entry.name))
    return found
