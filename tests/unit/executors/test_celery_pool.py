"""The Celery worker's runner: threads hand messages to one pool and wait for their end.

A fake executor stands in for the local process pool (the pool itself is tested in
``tests/unit/execution`` and end to end in ``tests/integration/test_celery*.py``): it
records what it was sent, and the test decides when each try ends.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from celery.exceptions import Reject

from cluster.devcluster.services.process import wait_until
from cluster.errors import MetastoreError
from cluster.executors.base import Dispatch
from cluster.executors.celery_pool import OutageBook, OutagePool, PooledRunner
from cluster.executors.local import OnFinished
from cluster.messages import TaskMessage
from cluster.states import TaskState

MESSAGE = TaskMessage("etl", "manual__1", "load", -1, 1, "abc")
OTHER = TaskMessage("etl", "manual__1", "transform", -1, 1, "abc")


class FakeExecutor:
    """Records dispatches; :meth:`finish` plays the pump telling a try's end."""

    def __init__(self, on_finished: OnFinished) -> None:
        self.on_finished = on_finished
        self.sent: list[TaskMessage] = []
        self.started = self.stopped = self.abandoned = 0
        self.drained: list[bool] = []
        self.reaped = threading.Event()

    def start(self) -> None:
        self.started += 1

    def send(self, dispatches: list[Dispatch]) -> None:
        self.sent.extend(d.message for d in dispatches)

    def stop(self, *, drain: bool) -> None:
        self.stopped += 1
        self.drained.append(drain)

    def abandon_running(self) -> None:
        self.abandoned += 1

    def reap_dead_workers(self) -> int:
        self.reaped.set()
        return 0

    def finish(self, message: TaskMessage, state: TaskState | None) -> None:
        self.on_finished(message, state)


class FakeBook:
    """A book whose claims fail while ``down``."""

    heartbeat_interval = 1.0

    def __init__(self) -> None:
        self.down = False
        self.claims: list[list[TaskMessage]] = []

    def claim(self, assignments: Sequence[tuple[TaskMessage, int]]) -> dict[TaskMessage, Any]:
        if self.down:
            raise MetastoreError("metastore operation failed after 6 attempts: 2003")
        self.claims.append([m for m, _ in assignments])
        return {m: object() for m, _ in assignments}

    def record(self, reports: Sequence[Any]) -> list[TaskState | None]:
        return [TaskState.SUCCESS for _ in reports]

    def record_lost(self, claimed: Any, reason: str, *, pid: int) -> TaskState | None:
        return TaskState.FAILED

    def heartbeat(self, tries: Sequence[Any]) -> list[bool]:
        return [True for _ in tries]

    def say(self, claimed: Any, line: str) -> None:
        pass


class FakePool:
    def __init__(self, book: FakeBook) -> None:
        self._book = book

    def book(self) -> FakeBook:
        return self._book

    def runner(self) -> Any:
        raise AssertionError("the fake executor forks no process")


class Harness:
    """A started :class:`PooledRunner` over a fake executor, with threads to run messages."""

    def __init__(self, recorded: list[tuple[TaskMessage, TaskState]]) -> None:
        self.book = FakeBook()
        self.pool = OutagePool(FakePool(self.book))
        self.pool.book()  # the executor builds its book when it starts
        holder: list[FakeExecutor] = []

        def build(on_finished: OnFinished) -> Any:
            holder.append(FakeExecutor(on_finished))
            return holder[0]

        self.runner = PooledRunner(
            build,
            self.pool,
            on_recorded=lambda m, s: recorded.append((m, s)),
            reap_interval=0.01,
        )
        self.executor = holder[0]
        self.results: dict[int, Any] = {}

    def run_in_thread(self, number: int, message: TaskMessage) -> threading.Thread:
        def target() -> None:
            try:
                self.results[number] = self.runner.run(message)
            except BaseException as exc:
                self.results[number] = exc

        thread = threading.Thread(target=target, daemon=True)
        thread.start()
        return thread


@pytest.fixture
def recorded() -> list[tuple[TaskMessage, TaskState]]:
    return []


@pytest.fixture
def harness(recorded: list[tuple[TaskMessage, TaskState]]) -> Harness:
    harness = Harness(recorded)
    harness.runner.prepare()
    harness.runner.prepare()  # once only
    assert harness.executor.started == 1
    return harness


def _sent(harness: Harness, count: int) -> Callable[[], bool]:
    return lambda: len(harness.executor.sent) >= count


def test_a_thread_waits_for_its_try_and_gets_the_recorded_state(
    harness: Harness, recorded: list[tuple[TaskMessage, TaskState]]
) -> None:
    first = harness.run_in_thread(1, MESSAGE)
    second = harness.run_in_thread(2, OTHER)
    wait_until(_sent(harness, 2), timeout=10, what="both messages handed to the pool")
    assert first.is_alive() and second.is_alive()  # not acknowledged before the end

    harness.executor.finish(OTHER, TaskState.UP_FOR_RETRY)
    second.join(10)
    assert harness.results == {2: TaskState.UP_FOR_RETRY}
    assert first.is_alive()
    harness.executor.finish(MESSAGE, TaskState.SUCCESS)
    first.join(10)
    assert harness.results[1] == TaskState.SUCCESS
    assert recorded == [(OTHER, TaskState.UP_FOR_RETRY), (MESSAGE, TaskState.SUCCESS)]


def test_a_copy_delivered_while_the_try_runs_here_runs_nothing(harness: Harness) -> None:
    first = harness.run_in_thread(1, MESSAGE)
    wait_until(_sent(harness, 1), timeout=10, what="the first copy handed to the pool")

    assert harness.runner.run(MESSAGE) is None  # refused without a claim
    assert harness.executor.sent == [MESSAGE]

    harness.executor.finish(MESSAGE, TaskState.SUCCESS)
    first.join(10)
    assert harness.results == {1: TaskState.SUCCESS}
    # a later copy goes to the pool again: there the claim refuses it
    late = harness.run_in_thread(3, MESSAGE)
    wait_until(_sent(harness, 2), timeout=10, what="the late copy handed to the pool")
    harness.executor.finish(MESSAGE, None)
    late.join(10)
    assert harness.results[3] is None


def test_a_claim_during_a_metastore_outage_sends_the_message_back(harness: Harness) -> None:
    book = harness.pool.book_built
    assert isinstance(book, OutageBook)
    harness.book.down = True
    thread = harness.run_in_thread(1, MESSAGE)
    wait_until(_sent(harness, 1), timeout=10, what="the message handed to the pool")

    # the pump claims: the failure claims nothing and remembers the message
    assert book.claim([(MESSAGE, 42)]) == {}
    harness.executor.finish(MESSAGE, None)
    thread.join(10)
    assert isinstance(harness.results[1], MetastoreError)

    harness.book.down = False
    assert set(book.claim([(MESSAGE, 42)])) == {MESSAGE}
    assert not book.unreachable(MESSAGE)  # told once, then forgotten


def test_a_cold_shutdown_releases_every_thread_and_requeues_its_message(
    harness: Harness,
) -> None:
    threads = [harness.run_in_thread(n, m) for n, m in enumerate([MESSAGE, OTHER])]
    wait_until(_sent(harness, 2), timeout=10, what="both messages handed to the pool")

    harness.runner.cut()
    harness.runner.cut()  # a second signal changes nothing
    for thread in threads:
        thread.join(10)
        assert not thread.is_alive()
    for result in harness.results.values():
        assert isinstance(result, Reject) and result.requeue is True
    wait_until(lambda: harness.executor.stopped == 1, timeout=10, what="the pool to stop")
    assert harness.executor.drained == [False]
    assert harness.executor.abandoned == 1  # the cut tries are left to the zombie reaper
    with pytest.raises(Reject):
        harness.runner.run(MESSAGE)  # nothing new is taken


def test_a_warm_shutdown_drains_the_pool_and_the_keeper_replaces_dead_processes(
    harness: Harness,
) -> None:
    assert harness.executor.reaped.wait(10)
    harness.runner.stop()
    harness.runner.stop()
    assert harness.executor.stopped == 1
    assert harness.executor.drained == [True]
    assert harness.executor.abandoned == 0
