"""The local pool's shell: a try whose process died is recorded unless abandoned and
the messages behind it go on (a try queued in its pipe too, without a second claim), a
worker takes its next try before its last one is recorded, a try that overruns its
timeout (queued behind another or not) or was cleared meanwhile is stopped, and the
loop's check for dead workers does not wait for the pump's metastore work.

A real :class:`LocalExecutor` forks real processes; their runner only sleeps, and the
book (in this process) counts what the pump claims and records. Deadlines and
heartbeats run on a fake clock (its epoch seconds, far from the real monotonic clock,
so a deadline taken from that one is never reached). Which worker takes which message, and when a
cold one imports a DAG version, is tested without processes in ``test_placement.py``.
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
from cluster.executors.local import KILL_GRACE, LocalExecutor
from cluster.executors.local_groups import SLOTS
from cluster.messages import TaskMessage
from cluster.sdk.runtime import process_group_started
from cluster.states import TaskState
from tests.clocks import FakeClock

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


def started(
    pool: Pool, *, size: int = 1, clock: Callable[[], float] = time.monotonic
) -> tuple[LocalExecutor, list[tuple[TaskMessage, TaskState | None]]]:
    """A started executor over ``pool``, and the list it appends each ended try to."""
    finished: list[tuple[TaskMessage, TaskState | None]] = []
    executor = LocalExecutor(
        size=size,
        worker_factory=pool,
        on_finished=lambda m, s: finished.append((m, s)),
        clock=clock,
    )
    executor.start()
    return executor, finished


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


def test_a_message_sent_twice_in_one_batch_runs_once() -> None:
    """Both copies are placed at once (two idle workers) and claimed together: the claim
    wins once, and only one copy runs."""
    pool = Pool(QuickRunner)
    executor, finished = started(pool, size=2)
    try:
        executor.send([Dispatch(MESSAGE), Dispatch(MESSAGE)])
        wait_until(lambda: len(finished) == 2, timeout=10, what="both copies to end")
    finally:
        executor.stop(drain=False)
    assert sorted(finished, key=lambda f: f[1] is None) == [
        (MESSAGE, TaskState.SUCCESS),
        (MESSAGE, None),
    ]
    assert len(pool.built.pids) == 2  # claimed together, in one batch


class GroupStartingRunner:
    """Starts ``count`` ``sleep``s, each in a session of its own as a Bash task does, and
    says so; writes their pids to ``pidfile`` once all run."""

    def __init__(self, pidfile: Path, count: int) -> None:
        self._pidfile = pidfile
        self._count = count

    def run(
        self, message: TaskMessage, claimed: Any, announce: Callable[[float | None], None]
    ) -> Any:
        announce(None)
        children = [
            subprocess.Popen(["sleep", "300"], start_new_session=True) for _ in range(self._count)
        ]
        for child in children:
            process_group_started(child.pid)
        self._pidfile.write_text(" ".join(str(child.pid) for child in children))
        time.sleep(120)

    def record_alone(self, report: Any) -> TaskState | None:
        return None


def _running(pid: int) -> bool:
    """Whether ``pid`` exists and is no zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


@pytest.mark.parametrize("count", [1, SLOTS + 2], ids=["in its slots", "beyond them"])
def test_the_process_groups_of_a_killed_pool_process_s_task_are_killed(
    tmp_path: Path, count: int
) -> None:
    """The groups a pool process keeps in its shared slots, and those it told the
    executor of over the pipe once the slots were full, are all killed."""
    pidfile = tmp_path / "sleep.pid"
    pool = Pool(lambda: GroupStartingRunner(pidfile, count))
    told = threading.Event()
    executor = LocalExecutor(size=1, worker_factory=pool, on_finished=lambda m, s: told.set())
    executor.start()
    sleeps: list[int] = []
    try:
        executor.send([Dispatch(MESSAGE)])
        wait_until(lambda: pidfile.exists() and pidfile.read_text(), timeout=10, what="sleep")
        sleeps = [int(pid) for pid in pidfile.read_text().split()]
        assert len(sleeps) == count and all(_running(pid) for pid in sleeps)
        os.kill(pool.built.pids[0], signal.SIGKILL)  # as the OOM killer would
        assert told.wait(10), "the pump never noticed the dead process"
        wait_until(
            lambda: not any(_running(pid) for pid in sleeps),
            timeout=10,
            what="the orphaned sleeps to die",
        )
    finally:
        executor.stop(drain=False)
        for pid in sleeps:
            if _running(pid):
                os.killpg(pid, signal.SIGKILL)
    assert len(pool.built.lost) == 1


class HangingRunner:
    """Hangs in the try of task ``hang``; returns at once from the others."""

    def run(
        self, message: TaskMessage, claimed: Any, announce: Callable[[float | None], None]
    ) -> Any:
        announce(None)
        if message.task_id == "hang":
            time.sleep(120)
        return message

    def record_alone(self, report: Any) -> TaskState | None:
        return None


def kill_and_replace(
    executor: LocalExecutor,
    dead: int,
    finished: list[tuple[TaskMessage, TaskState | None]],
    behind: TaskMessage,
    book: CountingBook,
) -> None:
    """SIGKILL pool process ``dead`` as the OOM killer would, then wait for its try to
    be recorded, for its replacement, and for ``behind`` (the try after it) to be recorded."""
    os.kill(dead, signal.SIGKILL)
    wait_until(lambda: bool(finished), timeout=10, what="the dead worker's try recorded")
    wait_until(lambda: executor.reap_dead_workers() == 1, timeout=10, what="a replacement")
    wait_until(lambda: behind in book.recorded_at, timeout=10, what="the try behind it")


def test_the_message_behind_a_dead_worker_goes_to_its_replacement() -> None:
    hang, behind = (TaskMessage("etl", "manual__1", t, -1, 1, "v1") for t in ("hang", "next"))
    pool = Pool(HangingRunner)
    executor, finished = started(pool)
    try:
        executor.send([Dispatch(hang), Dispatch(behind)])
        wait_until(lambda: bool(pool.built.pids), timeout=10, what="the first claim")
        dead = pool.built.pids[0]
        kill_and_replace(executor, dead, finished, behind, pool.built)
    finally:
        executor.stop(drain=False)
    assert finished == [(hang, TaskState.FAILED), (behind, TaskState.SUCCESS)]
    assert pool.built.pids[1] != dead  # claimed for the replacement process


def warmed_up(executor: LocalExecutor, book: CountingBook) -> None:
    """Run one quick try of version ``v1``: the pool measures the version as quick (its
    clock stands still in these tests, so every try takes no time)."""
    warm = TaskMessage("etl", "manual__0", "warm", -1, 1, "v1")
    executor.send([Dispatch(warm)])
    wait_until(lambda: warm in book.recorded_at, timeout=10, what="the warm-up try")


def test_a_try_queued_behind_a_dying_one_runs_on_the_replacement_without_a_new_claim() -> None:
    hang, behind = (TaskMessage("etl", "manual__1", t, -1, 1, "v1") for t in ("hang", "next"))
    pool = Pool(HangingRunner)
    executor, finished = started(pool, clock=FakeClock().epoch)
    try:
        warmed_up(executor, pool.built)
        finished.clear()
        executor.send([Dispatch(hang), Dispatch(behind)])
        # the only worker runs "hang" and holds "next", claimed for it, in its pipe
        wait_until(lambda: behind in pool.built.claimed_at, timeout=10, what="the queued claim")
        dead = pool.built.pids[-1]
        assert pool.built.pids[-2:] == [dead, dead]
        kill_and_replace(executor, dead, finished, behind, pool.built)
    finally:
        executor.stop(drain=False)
    assert finished == [(hang, TaskState.FAILED), (behind, TaskState.SUCCESS)]
    assert len(pool.built.pids) == 3  # the warm-up, "hang" and "next": never claimed again
    assert len(pool.built.lost) == 1


class TimeoutRunner:
    """Announces a 1 s ``execution_timeout``, then overruns it."""

    def run(
        self, message: TaskMessage, claimed: Any, announce: Callable[[float | None], None]
    ) -> Any:
        announce(1.0)
        time.sleep(120)

    def record_alone(self, report: Any) -> TaskState | None:
        return None


class SayingBook(CountingBook):
    """Keeps the lines the pump adds to a try's log; ``cleared`` fails its heartbeats."""

    def __init__(self, *, cleared: bool = False) -> None:
        super().__init__()
        self.said: list[str] = []
        self.cleared = cleared

    def heartbeat(self, tries: Sequence[Any]) -> list[bool]:
        return [not self.cleared for _ in tries]

    def say(self, claimed: Any, line: str) -> None:
        self.said.append(line)


def test_a_try_that_overruns_its_timeout_by_the_grace_is_killed_and_recorded_lost() -> None:
    clock, told = FakeClock(), threading.Event()
    pool = Pool(TimeoutRunner)
    pool.built = book = SayingBook()
    executor = LocalExecutor(
        size=1, worker_factory=pool, on_finished=lambda m, s: told.set(), clock=clock.epoch
    )
    executor.start()

    def later() -> bool:
        """Past the timeout and its grace, each poll: killed once the pump knows it."""
        clock.advance(1.0 + KILL_GRACE + 0.5)
        executor.send([])  # wakes the pump
        return told.is_set()

    try:
        executor.send([Dispatch(MESSAGE)])
        wait_until(lambda: bool(book.pids), timeout=10, what="the try to be claimed")
        wait_until(later, timeout=10, what="the overrunning try to be killed")
    finally:
        executor.stop(drain=False)
    assert book.lost == [
        "Task timed out after 1 s and was killed (it did not stop at its execution_timeout)"
    ]
    assert book.said == ["Task did not stop after its 1 s timeout: killed"]


class QuickThenTimeoutRunner(TimeoutRunner):
    """Returns at once, but for task ``slow``, which overruns its 1 s timeout."""

    def run(
        self, message: TaskMessage, claimed: Any, announce: Callable[[float | None], None]
    ) -> Any:
        if message.task_id == "slow":
            return super().run(message, claimed, announce)
        announce(None)
        return message


def test_the_timeout_of_a_try_that_was_queued_behind_another_is_enforced() -> None:
    """The queued try's "started" note follows its predecessor's report: it must set the
    queued try's deadline, not the finished one's."""
    clock, told = FakeClock(), threading.Event()
    pool = Pool(QuickThenTimeoutRunner)
    pool.built = book = SayingBook()
    executor = LocalExecutor(
        size=1,
        worker_factory=pool,
        on_finished=lambda m, s: told.set() if m.task_id == "slow" else None,
        clock=clock.epoch,
    )
    executor.start()
    quick, slow = (TaskMessage("etl", "manual__1", t, -1, 1, "v1") for t in ("quick", "slow"))

    def later() -> bool:
        clock.advance(1.0 + KILL_GRACE + 0.5)
        executor.send([])  # wakes the pump
        return told.is_set()

    try:
        warmed_up(executor, book)
        executor.send([Dispatch(quick), Dispatch(slow)])
        wait_until(lambda: quick in book.recorded_at, timeout=10, what="the quick try")
        assert len(set(book.pids)) == 1  # "slow" waited in the same worker's pipe
        wait_until(later, timeout=10, what="the overrunning queued try to be killed")
    finally:
        executor.stop(drain=False)
    assert book.lost == [
        "Task timed out after 1 s and was killed (it did not stop at its execution_timeout)"
    ]


def test_a_try_cleared_meanwhile_is_stopped_at_the_next_heartbeat_and_not_recorded() -> None:
    clock = FakeClock()
    pool = Pool(SleepingRunner)
    pool.built = book = SayingBook(cleared=True)
    executor, finished = started(pool, clock=clock.epoch)
    try:
        executor.send([Dispatch(MESSAGE)])
        wait_until(lambda: bool(book.pids), timeout=10, what="the try to be claimed")
        clock.advance(book.heartbeat_interval)
        executor.send([])  # wakes the pump: a heartbeat is due
        # the stop signal ends the worker (this runner has no handler for it)
        wait_until(lambda: bool(finished), timeout=10, what="the stopped try")
    finally:
        executor.stop(drain=False)
    assert finished == [(MESSAGE, None)]
    assert book.lost == []
    assert book.said == ["State of this instance was changed externally: killing the task"]


class StalledBook(CountingBook):
    """A claim that waits (a slow metastore) while the pump holds its metastore guard."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()

    def claim(self, assignments: Sequence[tuple[TaskMessage, int]]) -> dict[TaskMessage, Any]:
        self.entered.set()
        self.release.wait(30)
        return super().claim(assignments)


def test_an_iteration_with_no_dead_worker_does_not_wait_for_the_pump_s_transaction() -> None:
    """The loop asks for dead workers after every iteration; with none, the answer must
    not wait for the claim or record the pump is in the middle of."""
    pool = Pool(SleepingRunner)
    pool.built = StalledBook()
    executor = LocalExecutor(size=1, worker_factory=pool, on_finished=lambda m, s: None)
    executor.start()
    answers: list[int] = []
    try:
        executor.send([Dispatch(MESSAGE)])
        assert pool.built.entered.wait(10), "the pump never claimed"
        asking = threading.Thread(target=lambda: answers.append(executor.reap_dead_workers()))
        asking.start()
        asking.join(10)
        assert answers == [0]
    finally:
        pool.built.release.set()
        executor.stop(drain=False)
