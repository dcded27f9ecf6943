"""What the local executor's pump knows of the tries it handed out.

:class:`HeldTry` is one try a pool process holds. :class:`QueuedTries` keeps the tries
claimed for busy processes but not started: the one each has queued behind the try it
runs (sent down its pipe, see :func:`cluster.executors.placement.prefetch`), and those
whose process died before starting them, which the next idle process takes without a
new claim. The executor calls them with its lock held; its pump alone changes them.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from typing import Any

from cluster.executors.cold_starts import ColdStarts, Version
from cluster.executors.placement import Assignment, BusyWorker, prefetch, version_of
from cluster.messages import TaskMessage


@dataclass
class HeldTry:
    """The try a worker holds: claimed, and what the pump must still do about it."""

    message: TaskMessage
    #: the worker imports the DAG version first
    cold: bool = False
    claimed: Any = None
    timeout: float | None = None
    kill_at: float | None = None
    #: why the pump stopped the worker (timeout), or ``None``
    killed: str | None = None
    #: the try was cleared or marked meanwhile: record nothing
    abandoned: bool = False
    #: when the pump handed it to its worker, and when the worker said it has the DAG
    #: and starts the task (monotonic; a warm worker's: when it was handed over)
    handed_at: float = 0.0
    started_at: float | None = None
    #: process groups the task started that still run, beyond its worker's shared slots
    groups: set[int] = field(default_factory=set)
    #: queued behind another try and cleared or marked meanwhile: stopped once it starts
    stop_when_started: bool = False


#: the DAG versions worker ``number`` has imported
WarmOf = Callable[[int], Collection[Version]]


class QueuedTries:
    """Claimed tries not started: queued behind a busy worker's try, or left by a dead one."""

    def __init__(self) -> None:
        #: the try each busy worker has queued behind the one it runs, by worker number
        self.behind: dict[int, HeldTry] = {}
        #: tries whose worker died before it started them, oldest first
        self.orphans: deque[HeldTry] = deque()

    def __len__(self) -> int:
        return len(self.behind) + len(self.orphans)

    def __iter__(self) -> Iterator[HeldTry]:
        yield from self.behind.values()
        yield from self.orphans

    def held(self) -> list[tuple[int, HeldTry]]:
        """Every try here, with its worker's number (``-1``: none yet)."""
        return [*self.behind.items(), *((-1, t) for t in self.orphans)]

    def prefetch(
        self,
        backlog: deque[TaskMessage],
        running: dict[int, HeldTry],
        warm_of: WarmOf,
        costs: ColdStarts,
        now: float,
    ) -> list[Assignment]:
        """Queue backlog messages behind busy workers as :func:`prefetch` decides, taking
        them off ``backlog``; returns the assignments, still to be claimed."""
        busy = [
            BusyWorker(n, version_of(t.message), t.started_at, warm_of(n))
            for n, t in running.items()
            if n not in self.behind and t.started_at is not None and not t.abandoned
        ]
        if not backlog or not busy:
            return []
        placement = prefetch(backlog, busy, costs, now)
        backlog.clear()
        backlog.extend(placement.waiting)
        for assignment in placement.assignments:
            self.behind[assignment.worker] = HeldTry(assignment.message, handed_at=now)
        return placement.assignments

    def start_next(self, number: int, now: float) -> HeldTry | None:
        """Worker ``number`` reported: the try it had queued, now started, if any."""
        following = self.behind.pop(number, None)
        if following is not None:
            following.handed_at = now
            if following.started_at is None:  # its Started note, if any, came before
                following.started_at = now
        return following

    def orphan(self, number: int) -> HeldTry | None:
        """Worker ``number`` died: the try it had queued never started (its message is
        unread in the dead pipe) and waits for another worker. Returns it instead when
        it was cleared or marked meanwhile: there is nothing left to run."""
        queued = self.behind.pop(number, None)
        if queued is None or queued.abandoned:
            return queued
        self.orphans.append(queued)
        return None

    def hand_out(
        self, idle: list[int], warm_of: WarmOf, now: float
    ) -> tuple[list[tuple[int, HeldTry]], list[TaskMessage]]:
        """Pair orphans with idle workers (warm first), taking those off ``idle``; also
        returns the messages of orphans cleared or marked meanwhile, dropped instead."""
        handed: list[tuple[int, HeldTry]] = []
        dropped: list[TaskMessage] = []
        while self.orphans and idle:
            current = self.orphans.popleft()
            if current.abandoned:
                dropped.append(current.message)
                continue
            version = version_of(current.message)
            warm = [n for n in idle if version in warm_of(n)]
            number = warm[-1] if warm else idle[-1]
            idle.remove(number)
            current.cold = not warm
            current.handed_at = now
            current.started_at = None if current.cold else now
            handed.append((number, current))
        return handed, dropped
