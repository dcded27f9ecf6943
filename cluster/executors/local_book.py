"""The local executor's book as its pump calls it: held off forks, failures handled once.

The pump does all the metastore work of the pool through the
:class:`~cluster.executors.local_worker.TryBook` it was given. Two rules hold for
every call, and live here instead of around each call in the executor: a call holds
the fork guard, and a record that fails is logged and counts as "nothing recorded" (the
zombie reaper ends those tries later), where a failed claim is the caller's to retry.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Sequence
from typing import Any

from cluster.errors import TradewindError
from cluster.executors.local_worker import TryBook
from cluster.messages import TaskMessage
from cluster.states import TaskState

log = logging.getLogger(__name__)


class GuardedBook:
    """A :class:`TryBook` whose metastore calls hold ``fork_guard``.

    The executor holds the same lock around a fork: a child forked while another
    thread is inside a SQLite transaction inherits SQLite's in-process lock table and
    finds the database locked for good.
    """

    def __init__(self, book: TryBook, fork_guard: threading.Lock) -> None:
        self._book = book
        self._fork_guard = fork_guard
        self.heartbeat_interval = book.heartbeat_interval

    def claim(self, assignments: Sequence[tuple[TaskMessage, int]]) -> dict[TaskMessage, Any]:
        """Claim ``(message, worker pid)`` pairs; return the claimed tries won.

        :raises TradewindError: nothing was claimed; the caller tries again later.
        """
        with self._fork_guard:
            return self._book.claim(assignments)

    def record(self, reports: Sequence[Any]) -> list[TaskState | None]:
        """Record ended tries; ``None`` for each one not recorded (claim lost, or the
        metastore failed: then the zombie reaper ends it)."""
        try:
            with self._fork_guard:
                return self._book.record(reports)
        except TradewindError:
            log.exception(
                "could not record %d tries; the zombie reaper will end them", len(reports)
            )
            return [None] * len(reports)

    def record_lost(self, claimed: Any, reason: str, *, pid: int) -> TaskState | None:
        """Record a try whose worker died before reporting; ``None`` if that failed."""
        try:
            with self._fork_guard:
                return self._book.record_lost(claimed, reason, pid=pid)
        except TradewindError:
            log.exception("could not record a lost try; the zombie reaper will end it")
            return None

    def heartbeat(self, tries: Sequence[Any]) -> list[bool]:
        """Heartbeat running tries; ``False`` for one that was cleared or marked meanwhile."""
        with self._fork_guard:
            return self._book.heartbeat(tries)

    def say(self, claimed: Any, line: str) -> None:
        """Add a line to the try's log, if it can be written (a log file, no metastore)."""
        with contextlib.suppress(OSError):
            self._book.say(claimed, line)
