"""Leading = holding the election and the newest fencing epoch, checked by the loop thread.

The election (ZooKeeper or none) says who should lead; the epoch in the metastore
makes it safe: a scheduler takes a new epoch when it starts leading, and every write
transaction checks it. Only the loop thread moves this state, so taking over and
stepping down never race with an iteration.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from cluster.errors import MetastoreError
from cluster.metastore.engine import transaction
from cluster.scheduler.election import Elector
from cluster.scheduler.fencing import Fence

log = logging.getLogger(__name__)


class Leadership:
    """This scheduler's role, as the loop sees it at the start of each iteration.

    :param on_elected: called with the new epoch right after taking over.
    :param on_deposed: called with the reason right after stepping down.
    """

    def __init__(
        self,
        elector: Elector,
        fence: Fence,
        *,
        sessions: sessionmaker[Session],
        clock: Callable[[], datetime],
        on_elected: Callable[[int], None] = lambda epoch: None,
        on_deposed: Callable[[str], None] = lambda reason: None,
    ) -> None:
        self.elector = elector
        self.fence = fence
        self._sessions = sessions
        self._clock = clock
        self._on_elected = on_elected
        self._on_deposed = on_deposed
        self.leading = False
        #: how many times this scheduler took over (for metrics and tests)
        self.terms = 0

    def is_leader(self) -> bool:
        """Whether to run an iteration now; takes over or steps down as the election says."""
        holds = self.elector.holds()
        if self.leading and not holds:
            self._step_down("lost the election")
        elif holds and not self.leading:
            self._take_over()
        return self.leading

    def fenced_off(self, reason: str) -> None:
        """A write found a newer epoch: step down and contend again."""
        if self.leading:
            self._step_down(reason)
        self.elector.resign()

    def release(self) -> None:
        """Leave for good (clean shutdown): the election is released at once."""
        self.elector.stop()
        if self.leading:
            self._step_down("shutting down", level=logging.INFO)

    @property
    def role(self) -> str:
        return "leader" if self.leading else "standby"

    def _take_over(self) -> None:
        try:
            epoch = transaction(self._sessions, lambda s: self.fence.acquire(s, now=self._clock()))
        except MetastoreError as exc:
            log.warning("elected, but the metastore is unreachable; not leading yet: %s", exc)
            return
        # the election may have been lost while the epoch was taken; the next check sees it
        self.leading = True
        self.terms += 1
        log.info("leading the schedulers with epoch %s", epoch)
        self._on_elected(epoch)

    def _step_down(self, reason: str, *, level: int = logging.WARNING) -> None:
        log.log(level, "stepping down (%s): epoch %s no longer writes", reason, self.fence.epoch)
        self.leading = False
        self.fence.release()
        self._on_deposed(reason)
