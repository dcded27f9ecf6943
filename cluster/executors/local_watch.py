"""What the local executor's pump waits on: its workers' pipes and lives, and its wake pipe.

``multiprocessing.connection.wait`` builds a selector and registers every descriptor on
each call: with 32 workers (a pipe and a process sentinel each) about 0.1 ms of the
scheduler's CPU per wake-up, and the pump wakes once or twice per try. One epoll set,
kept while the workers stay the same and rebuilt when one dies or is replaced, answers
the same question with one system call.
"""

from __future__ import annotations

import selectors
from collections.abc import Sequence
from typing import NamedTuple

from cluster.executors.local_worker import WorkerProcess


class Ready(NamedTuple):
    """What a wait found: workers with something to read, the wake pipe, a death."""

    #: numbers of the live workers whose pipe has something to read
    readable: list[int]
    #: the wake pipe was written to
    woken: bool
    #: a worker's process ended (its sentinel is readable until it is replaced)
    died: bool


class PumpWatch:
    """The pump's epoll set; used by the pump thread alone."""

    def __init__(self, wake_fd: int) -> None:
        self._wake_fd = wake_fd
        self._selector: selectors.BaseSelector | None = None
        self._watched: tuple[tuple[int, bool], ...] = ()

    def wait(self, workers: Sequence[WorkerProcess], timeout: float) -> Ready:
        """Wait up to ``timeout`` seconds for a worker's note, a death or a wake-up.

        A death is seen through the worker's sentinel, which stays readable until the
        worker is marked dead: the pump need not ask every process whether it lives
        (32 ``waitpid`` calls, about 60 us) on each wake-up.
        """
        selector = self._selector_for(workers)
        ready = Ready([], False, False)
        for key, _ in selector.select(timeout):
            if key.data is None:
                ready = ready._replace(woken=True)
            elif key.data >= 0:
                ready.readable.append(key.data)
            else:
                ready = ready._replace(died=True)
        return ready

    def close(self) -> None:
        if self._selector is not None:
            self._selector.close()
            self._selector = None

    def _selector_for(self, workers: Sequence[WorkerProcess]) -> selectors.BaseSelector:
        watched = tuple((id(w), w.dead) for w in workers)
        if self._selector is not None and watched == self._watched:
            return self._selector
        self.close()
        selector = selectors.DefaultSelector()
        selector.register(self._wake_fd, selectors.EVENT_READ, None)
        for number, worker in enumerate(workers):
            if worker.dead:
                continue
            selector.register(worker.conn, selectors.EVENT_READ, number)
            # -1 - number: a death, which the pump learns by checking its workers
            selector.register(worker.process.sentinel, selectors.EVENT_READ, -1 - number)
        self._selector, self._watched = selector, watched
        return selector
