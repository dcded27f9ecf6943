"""Running given tries to their end on the local pool, for a caller that waits.

``tradewind tasks run`` and the fake-clock test harness use it. It is the local
executor itself (the same pool processes, book, heartbeats, deadlines and handling of
dead workers that run scheduled tries), so they run a try exactly as production does;
:meth:`BlockingExecutor.run` only adds the waiting.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType

from cluster.executors.base import Dispatch
from cluster.executors.local import LocalExecutor
from cluster.executors.local_worker import WorkerPool
from cluster.messages import TaskMessage
from cluster.states import TaskState


@dataclass(frozen=True)
class TryResult:
    """What became of a message: ``state`` is ``None`` when it ran nothing (already
    claimed, no longer queued) or its record found the claim lost."""

    message: TaskMessage
    state: TaskState | None


class BlockingExecutor:
    """A local executor of ``size`` pool processes whose :meth:`run` waits for the end."""

    def __init__(self, pool: WorkerPool, *, size: int = 1) -> None:
        self._executor = LocalExecutor(size=size, worker_factory=pool, on_finished=self._finished)
        self._results: list[TryResult] = []
        self._changed = threading.Condition()

    def start(self) -> None:
        self._executor.start()

    def run(self, messages: Sequence[TaskMessage]) -> list[TryResult]:
        """Run ``messages`` (in this order on one process); their results as they ended.

        A pool process that died with its try (recorded as lost) is replaced before
        this returns, so the next call finds the pool whole.
        """
        with self._changed:
            first = len(self._results)
        self._executor.send([Dispatch(message) for message in messages])
        with self._changed:
            self._changed.wait_for(lambda: len(self._results) - first >= len(messages))
            results = self._results[first:]
        self._executor.reap_dead_workers()
        return results

    def stop(self) -> None:
        self._executor.stop(drain=True)

    def __enter__(self) -> BlockingExecutor:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _finished(self, message: TaskMessage, state: TaskState | None) -> None:
        with self._changed:
            self._results.append(TryResult(message, state))
            self._changed.notify_all()
