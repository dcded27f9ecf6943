"""A message the metastore kept from running goes back to the broker, never acknowledged."""

from __future__ import annotations

import pytest
from celery.exceptions import Reject

from cluster.errors import MetastoreError
from cluster.executors.celery_app import REQUEUE_PAUSE_MAX, PoolProcessRunner
from cluster.messages import TaskMessage
from cluster.states import TaskState

MESSAGE = TaskMessage("etl", "manual__1", "load", -1, 1, "abc")


class FlakyRunner:
    """A task runner whose metastore is down for the first ``down`` messages."""

    def __init__(self, down: int) -> None:
        self.down = down
        self.ran: list[TaskMessage] = []

    def run(self, message: TaskMessage) -> TaskState | None:
        if self.down:
            self.down -= 1
            raise MetastoreError("metastore operation failed after 6 attempts: 2003")
        self.ran.append(message)
        return TaskState.SUCCESS

    def prepare(self) -> None:
        pass


def test_an_unreachable_metastore_requeues_the_message_after_a_growing_pause() -> None:
    pauses: list[float] = []
    runner = FlakyRunner(down=6)
    pool = PoolProcessRunner(lambda: runner, sleep=pauses.append)

    for _ in range(6):
        with pytest.raises(Reject) as rejected:
            pool.run(MESSAGE.to_dict())
        assert rejected.value.requeue is True

    assert pauses == sorted(pauses) and pauses[0] < pauses[-1] == REQUEUE_PAUSE_MAX
    assert runner.ran == []
    assert pool.run(MESSAGE.to_dict()) == "success"
    assert runner.ran == [MESSAGE] and pool.outage_streak == 0
