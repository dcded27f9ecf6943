"""The local pool: a try whose process died is recorded unless abandoned, a worker
takes its next try before its last one is recorded, and when a cold worker imports a
DAG version.

A real :class:`LocalExecutor` forks real processes; their runner only sleeps, and the
book (in this process) counts what the pump claims and records.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from cluster.devcluster.services.process import wait_until
from cluster.executors.base import Dispatch
from cluster.executors.cold_starts import ColdStarts, VersionCost
from cluster.executors.local import LocalExecutor
from cluster.messages import TaskMessage
from cluster.sdk.runtime import process_group_started
from cluster.states import TaskState

MESSAGE = TaskMessage("etl", "manual__1", "load", -1, 1, "abc")


class SleepingRunner:
    def run(
        self, message: TaskMessage, claimed: Any, announce: Callable[[float | None], None]
    ) -> Any:
        announce(None)
        time.sleep(120)

    def record_alone(self, report: Any) -> TaskState | None:
        return None


class CountingBook:
    """Counts what the pump claims and records, and when (a report is its message)."""

    heartbeat_interval = 60.0

    def __init__(self) -> None:
        self.pids: list[int] = []
        self.lost: list[str] = []
        self.claimed_at: dict[TaskMessage, float] = {}
        self.recorded_at: dict[TaskMessage, float] = {}

    def claim(self, assignments: Sequence[tuple[TaskMessage, int]]) -> dict[TaskMessage, Any]:
        self.pids.extend(pid for _, pid in assignments)
        self.claimed_at.update({message: time.monotonic() for message, _ in assignments})
        return {message: "claimed" for message, _ in assignments}

    def record(self, reports: Sequence[Any]) -> list[TaskState | None]:
        self.recorded_at.update({message: time.monotonic() for message in reports})
        return [TaskState.SUCCESS for _ in reports]

    def record_lost(self, claimed: Any, reason: str, *, pid: int) -> TaskState | None:
        self.lost.append(reason)
        return TaskState.FAILED

    def heartbeat(self, tries: Sequence[Any]) -> list[bool]:
        return [True for _ in tries]

    def say(self, claimed: Any, line: str) -> None:
        pass


class Pool:
    """The book lives here; each worker process builds a ``runner_class``."""

    def __init__(self, runner_class: Callable[[], Any]) -> None:
        self.built = CountingBook()
        self._runner_class = runner_class

    def book(self) -> CountingBook:
        return self.built

    def runner(self) -> Any:
        return self._runner_class()


@pytest.mark.parametrize("abandoned", [False, True])
def test_a_dead_pool_process_records_its_try_lost_unless_abandoned(abandoned: bool) -> None:
    pool = Pool(SleepingRunner)
    finished: list[tuple[TaskMessage, TaskState | None]] = []
    told = threading.Event()

    def on_finished(message: TaskMessage, state: TaskState | None) -> None:
        finished.append((message, state))
        told.set()

    executor = LocalExecutor(size=1, worker_factory=pool, on_finished=on_finished)
    executor.start()
    try:
        executor.send([Dispatch(MESSAGE)])
        wait_until(lambda: bool(pool.built.pids), timeout=10, what="the try to be claimed")
        if abandoned:
            executor.abandon_running()
        os.kill(pool.built.pids[0], signal.SIGKILL)
        assert told.wait(10), "the pump never noticed the dead process"
    finally:
        executor.stop(drain=False)

    if abandoned:
        assert finished == [(MESSAGE, None)]
        assert pool.built.lost == []
    else:
        assert finished == [(MESSAGE, TaskState.FAILED)]
        assert len(pool.built.lost) == 1 and "SIGKILL" in pool.built.lost[0]


class QuickRunner:
    def run(
        self, message: TaskMessage, claimed: Any, announce: Callable[[float | None], None]
    ) -> Any:
        announce(None)
        return message

    def record_alone(self, report: Any) -> TaskState | None:
        return None


class HeldBook(CountingBook):
    """Records only once :attr:`open` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.open = threading.Event()

    def record(self, reports: Sequence[Any]) -> list[TaskState | None]:
        assert self.open.wait(30), "the test never let the record through"
        return super().record(reports)


def test_a_worker_takes_its_next_try_before_its_last_one_is_recorded() -> None:
    pool = Pool(QuickRunner)
    pool.built = book = HeldBook()
    first, second = (TaskMessage("etl", "manual__1", t, -1, 1, "v1") for t in ("a", "b"))
    executor = LocalExecutor(size=1, worker_factory=pool, on_finished=lambda m, s: None)
    executor.start()
    stopped = threading.Event()
    try:
        executor.send([Dispatch(first), Dispatch(second)])
        # the first try's record is held, yet the only worker already has the second
        wait_until(lambda: second in book.claimed_at, timeout=10, what="the second claim")
        assert book.recorded_at == {}
        drain = threading.Thread(target=lambda: (executor.stop(drain=True), stopped.set()))
        drain.start()
        assert not stopped.wait(0.5)  # a drain waits for the held records too
        book.open.set()
        assert stopped.wait(30), "the drain never ended"
    finally:
        book.open.set()
        executor.stop(drain=False)
    assert set(book.recorded_at) == {first, second}


def test_a_backlog_that_lasts_an_import_warms_one_more_worker() -> None:
    costs = ColdStarts()
    version = ("etl", "v1")
    costs.imported(version, 0.2)
    costs.ran(version, 0.01)  # short tries: the queue ahead drains in 40 ms
    asked = {"waiting": 8, "workers": 2, "running_for": 0.0}
    costs.waiting(version, 100.0)
    costs.waiting(version, 100.15)  # a later message does not restart the clock
    assert not costs.pays(version, now=100.1, **asked)
    assert costs.pays(version, now=100.2, **asked)
    costs.cold_started(version, 100.2)  # the next cold start waits as long again
    assert not costs.pays(version, now=100.3, **asked)
    costs.waiting_only(set())  # the backlog drained: the clock starts afresh
    costs.waiting(version, 101.0)
    assert not costs.pays(version, now=101.1, **asked)


class GroupStartingRunner:
    """Starts ``sleep`` in a session of its own, as a Bash task does, and says so."""

    def __init__(self, pidfile: Path) -> None:
        self._pidfile = pidfile

    def run(
        self, message: TaskMessage, claimed: Any, announce: Callable[[float | None], None]
    ) -> Any:
        announce(None)
        child = subprocess.Popen(["sleep", "300"], start_new_session=True)
        process_group_started(child.pid)
        self._pidfile.write_text(str(child.pid))
        time.sleep(120)

    def record_alone(self, report: Any) -> TaskState | None:
        return None


def _running(pid: int) -> bool:
    """Whether ``pid`` exists and is no zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def test_the_process_groups_of_a_killed_pool_process_s_task_are_killed(
    tmp_path: Path,
) -> None:
    pidfile = tmp_path / "sleep.pid"
    pool = Pool(lambda: GroupStartingRunner(pidfile))
    told = threading.Event()
    executor = LocalExecutor(size=1, worker_factory=pool, on_finished=lambda m, s: told.set())
    executor.start()
    try:
        executor.send([Dispatch(MESSAGE)])
        wait_until(lambda: pidfile.exists() and pidfile.read_text(), timeout=10, what="sleep")
        sleep = int(pidfile.read_text())
        assert _running(sleep)
        os.kill(pool.built.pids[0], signal.SIGKILL)  # as the OOM killer would
        assert told.wait(10), "the pump never noticed the dead process"
        wait_until(lambda: not _running(sleep), timeout=10, what="the orphaned sleep to die")
    finally:
        executor.stop(drain=False)
        if pidfile.exists() and _running(int(pidfile.read_text())):
            os.killpg(int(pidfile.read_text()), signal.SIGKILL)
    assert len(pool.built.lost) == 1


def test_a_cold_start_pays_only_when_the_waiting_would_outlast_an_import() -> None:
    assert VersionCost().worth_a_cold_start(waiting=100, workers=1) is None  # no import seen
    first_tries_running = VersionCost(load=0.1)  # no try ended yet: how long they run counts
    assert first_tries_running.worth_a_cold_start(waiting=4, workers=2, running_for=0.01) is False
    assert first_tries_running.worth_a_cold_start(waiting=4, workers=2, running_for=1.0) is True
    short_tasks = VersionCost(load=0.1, busy=0.005)  # 32 waiting on 2 workers: 80 ms < 100 ms
    assert short_tasks.worth_a_cold_start(waiting=32, workers=2) is False
    assert short_tasks.worth_a_cold_start(waiting=32, workers=1) is True
    long_tasks = VersionCost(load=0.1, busy=0.3)  # a try outlasts an import: spread
    assert long_tasks.worth_a_cold_start(waiting=1, workers=4) is True
    heavy_file = VersionCost(load=1.0, busy=0.3)  # only a long queue pays for a 1 s import
    assert heavy_file.worth_a_cold_start(waiting=1, workers=1) is False
    assert heavy_file.worth_a_cold_start(waiting=8, workers=2) is True


class ImportingRunner:
    """Imports (sleeps ``IMPORT``) before a version's first try in this process, then
    runs the try for ``TRY`` seconds."""

    IMPORT, TRY = 0.05, 2.0  # a wide margin: the third must start long before the first ends

    def __init__(self) -> None:
        self.warm: set[str] = set()

    def run(
        self, message: TaskMessage, claimed: Any, announce: Callable[[float | None], None]
    ) -> Any:
        if message.fingerprint not in self.warm:
            time.sleep(self.IMPORT)
            self.warm.add(message.fingerprint)
        announce(None)
        time.sleep(self.TRY)
        return message

    def record_alone(self, report: Any) -> TaskState | None:
        return None


def test_tries_that_wait_longer_than_an_import_spread_over_cold_workers() -> None:
    pool = Pool(ImportingRunner)
    messages = [TaskMessage("etl", "manual__1", f"t{i}", -1, 1, "v1") for i in range(3)]
    executor = LocalExecutor(size=8, worker_factory=pool, on_finished=lambda m, s: None)
    executor.start()
    try:
        executor.send([Dispatch(m) for m in messages])
        wait_until(
            lambda: len(pool.built.recorded_at) == 3, timeout=30, what="the three tries to end"
        )
    finally:
        executor.stop(drain=False)
    book = pool.built
    spans = [(book.claimed_at[m], book.recorded_at[m]) for m in messages]
    last_start = max(start for start, _ in spans)
    first_end = min(end for _, end in spans)
    assert last_start < first_end, spans  # all three ran side by side
