"""The local pool records a try whose process died, unless its tries were abandoned.

A real :class:`LocalExecutor` forks real processes; their runner only sleeps, and the
book (in this process) counts what the pump records.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from cluster.devcluster.services.process import wait_until
from cluster.executors.base import Dispatch, TaskMessage
from cluster.executors.local import LocalExecutor, VersionCost
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
    heartbeat_interval = 60.0

    def __init__(self) -> None:
        self.pids: list[int] = []
        self.lost: list[str] = []

    def claim(self, assignments: Sequence[tuple[TaskMessage, int]]) -> dict[TaskMessage, Any]:
        self.pids.extend(pid for _, pid in assignments)
        return {message: "claimed" for message, _ in assignments}

    def record(self, reports: Sequence[Any]) -> list[TaskState | None]:
        return [TaskState.SUCCESS for _ in reports]

    def record_lost(self, claimed: Any, reason: str, *, pid: int) -> TaskState | None:
        self.lost.append(reason)
        return TaskState.FAILED

    def heartbeat(self, tries: Sequence[Any]) -> list[bool]:
        return [True for _ in tries]

    def say(self, claimed: Any, line: str) -> None:
        pass


class Pool:
    def __init__(self) -> None:
        self.built = CountingBook()

    def book(self) -> CountingBook:
        return self.built

    def runner(self) -> SleepingRunner:
        return SleepingRunner()


@pytest.mark.parametrize("abandoned", [False, True])
def test_a_dead_pool_process_records_its_try_lost_unless_abandoned(abandoned: bool) -> None:
    pool = Pool()
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


def test_a_cold_start_pays_only_when_the_waiting_would_outlast_an_import() -> None:
    assert VersionCost().worth_a_cold_start(waiting=100, workers=1) is None  # no import seen
    first_tries_running = VersionCost(load=0.1)  # no try ended yet: how long they run counts
    assert first_tries_running.worth_a_cold_start(waiting=4, workers=2, running_for=0.01) is False
    assert first_tries_running.worth_a_cold_start(waiting=4, workers=2, running_for=1.0) is True
    short_tasks = VersionCost(load=0.1, busy=0.005)  # 32 waiting on 2 workers: 80 ms < 100 ms
    assert short_tasks.worth_a_cold_start(waiting=32, workers=2) is False
    assert short_tasks.worth_a_cold_start(waiting=32, workers=1) is True
    long_task = VersionCost(load=0.1, busy=10.0)  # one message waiting on a 10 s task: import
    assert long_task.worth_a_cold_start(waiting=1, workers=4) is True
