"""The triggerer's main loop: beat, claim, start and stop triggers, write their outcomes.

One pass (:meth:`TriggererService.run_pass`), every ``triggerer.poll_interval`` seconds
and at once when a trigger has an outcome:

1. **fence**: if the last heartbeat written is older than half of
   ``triggerer.health_timeout``, stop every trigger and wait (others may take them over
   at the full timeout; see :mod:`.pulse`);
2. **write** outcomes: resume the tries, delete the rows (:mod:`.delivery`);
3. **claim** free rows up to ``triggerer.capacity`` (:mod:`cluster.metastore.trigger_claims`),
   then start the held rows not yet running and cancel running ones no longer held;
4. now and then, delete rows no deferred try waits on any more (cleared, timed out).

All metastore work happens on this thread; the triggers run on the runner's event
loop (:mod:`.runner`), the heartbeat on a thread of its own (:mod:`.pulse`).

Takeover bound: a triggerer's rows are free ``health_timeout`` after its last beat, and
another claims them at its next pass, so within ``health_timeout + poll_interval`` (plus
the time to load and start them) of the last beat; a cleanly stopped triggerer hands its
rows back at once.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from cryptography.fernet import MultiFernet
from sqlalchemy.orm import Session

from cluster.config import TriggererSettings
from cluster.errors import ConfigError, TradewindError
from cluster.metastore import trigger_claims, triggers
from cluster.metastore.engine import SessionFactory, transaction
from cluster.metrics.triggerer import TriggererMetrics
from cluster.triggerer.classes import TriggerFactory
from cluster.triggerer.delivery import BATCH, Written, write_outcomes
from cluster.triggerer.outcomes import Outcome, failure_of
from cluster.triggerer.pulse import Pulse
from cluster.triggerer.runner import TriggerRunner

log = logging.getLogger(__name__)

#: passes between deletions of rows nobody waits on
CLEANUP_EVERY = 15


def check_settings(settings: TriggererSettings) -> None:
    """:raises ConfigError: in one line, for settings a triggerer cannot work with."""
    if settings.capacity < 1:
        raise ConfigError(f"triggerer.capacity must be at least 1 (got {settings.capacity})")
    if settings.poll_interval <= 0 or settings.heartbeat_interval <= 0:
        raise ConfigError("triggerer.poll_interval and triggerer.heartbeat_interval must be > 0")
    if settings.heartbeat_interval * 2 >= settings.health_timeout / 2:
        raise ConfigError(
            f"triggerer.health_timeout ({settings.health_timeout:g} s) must be over four "
            f"times triggerer.heartbeat_interval ({settings.heartbeat_interval:g} s): "
            "a triggerer stops its triggers after half the timeout without a heartbeat"
        )


class TriggererService:
    """One triggerer: :meth:`run` until :meth:`stop` (from another thread or a signal)."""

    def __init__(
        self,
        settings: TriggererSettings,
        *,
        sessions: SessionFactory,
        fernet: MultiFernet,
        host: str,
        metrics: TriggererMetrics | None = None,
        fingerprints: Mapping[str, str] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        check_settings(settings)
        self.settings = settings
        self._sessions = sessions
        self._fernet = fernet
        self._clock = clock
        self._monotonic = monotonic
        self.metrics = metrics or TriggererMetrics()
        self.metrics.set_capacity(settings.capacity)
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self.runner = TriggerRunner(on_outcome=self._wake.set, monotonic=monotonic)
        self.pulse = Pulse(
            sessions,
            host=host,
            interval=settings.heartbeat_interval,
            describe=self._describe,
            fingerprints=fingerprints,
            clock=clock,
            monotonic=monotonic,
        )
        self._factory = TriggerFactory()
        #: outcomes taken from the runner and not yet written (the metastore failed)
        self._pending: list[Outcome] = []
        self._fenced = False
        self._passes = 0
        self._last_claim = float("-inf")

    # --- lifecycle ------------------------------------------------------------------

    def run(self) -> None:
        """Beat once (waiting for the metastore), then run passes until :meth:`stop`."""
        while not self.pulse.beat():
            if self._stopped.wait(self.settings.heartbeat_interval):
                return
        log.info(
            "triggerer ready: id %s, capacity %d, health timeout %g s",
            self.pulse.component_id,
            self.settings.capacity,
            self.settings.health_timeout,
        )
        self.runner.start()
        self.pulse.start()
        try:
            while not self._stopped.is_set():
                self.run_pass()
                self._wake.wait(self.settings.poll_interval)
                self._wake.clear()
        finally:
            self._shut_down()

    def stop(self) -> None:
        self._stopped.set()
        self._wake.set()

    def _shut_down(self) -> None:
        """Cancel the triggers, write what they yielded, hand the rows back, beat ``stopped``."""
        self.runner.stop()
        self._take_outcomes()
        try:
            self._write_pending()
            if self.pulse.component_id is not None:
                released = transaction(
                    self._sessions,
                    lambda s: trigger_claims.release(s, self._my_id()),
                    retries=1,
                )
                log.info("triggerer stopping: handed %d triggers back", released)
        except TradewindError as exc:
            log.warning("triggerer stopping: could not hand its triggers back: %s", exc)
        self.pulse.stop()

    # --- one pass -------------------------------------------------------------------

    def run_pass(self) -> None:
        started = self._monotonic()
        if self._fence():
            return
        try:
            self._take_outcomes()
            self._write_pending()
            if self._monotonic() - self._last_claim >= self.settings.poll_interval:
                self._last_claim = self._monotonic()
                self._claim_and_sync()
                self._passes += 1
                if self._passes % CLEANUP_EVERY == 0:
                    transaction(self._sessions, triggers.delete_unused)
        except TradewindError as exc:
            log.warning("triggerer pass failed (retried at the next): %s", exc)
        running = self.runner.running()
        self.metrics.set_running(len(running))
        self.metrics.set_blocked(self.runner.blocked)
        self.metrics.observe_pass(self._monotonic() - started)

    def _fence(self) -> bool:
        """Stop every trigger while the last written heartbeat is too old; say whether."""
        age = self.pulse.age()
        if age > self.settings.health_timeout / 2:
            if not self._fenced:
                log.error(
                    "no heartbeat written for %.1f s: stopping every trigger until the "
                    "metastore answers again (others take them over after %g s)",
                    age,
                    self.settings.health_timeout,
                )
                self._fenced = True
                self.runner.cancel_all()
                self._pending.clear()
                self.metrics.fenced()
            return True
        if self._fenced:
            log.warning("heartbeat written again: claiming triggers again")
            self._fenced = False
        return False

    def _take_outcomes(self) -> None:
        self._pending.extend(self.runner.take_outcomes())

    def _write_pending(self) -> None:
        """Write the pending outcomes batch by batch; a failed batch stays pending."""
        me = self._my_id() if self._pending else 0
        while self._pending:
            batch = self._pending[:BATCH]
            written = transaction(self._sessions, functools.partial(_write, me=me, batch=batch))
            del self._pending[: len(batch)]
            self.runner.forget(o.trigger_id for o in batch)
            self.metrics.written(fired=written.fired, failed=written.failed)
            if written.dropped:
                log.info("%d trigger outcomes dropped: rows no longer held", written.dropped)

    def _claim_and_sync(self) -> None:
        """Claim free rows, then run exactly the held ones."""
        held, won = transaction(self._sessions, self._claim)
        taken_over = sum(n for owner, n in won.items() if owner is not None)
        for owner, count in won.items():
            if owner is not None:
                log.warning("took over %d triggers of triggerer %s (no heartbeat)", count, owner)
        self.metrics.claimed(unassigned=won.get(None, 0), taken_over=taken_over)
        gone = self.runner.running() - held
        self.runner.cancel(gone)
        new = held - self.runner.known()
        if new:
            self._start(new)

    def _claim(self, session: Session) -> tuple[set[int], dict[int | None, int]]:
        me = self._my_id()
        held = trigger_claims.held_ids(session, me)
        won = trigger_claims.claim(
            session,
            me,
            room=self.settings.capacity - len(held),
            now=self._clock(),
            health_timeout=self.settings.health_timeout,
        )
        if won:
            held = trigger_claims.held_ids(session, me)
        return held, won

    def _start(self, ids: set[int]) -> None:
        """Load, build and start these triggers; one that cannot be built fails its tries."""
        rows = transaction(self._sessions, lambda s: triggers.load(s, ids, fernet=self._fernet))
        for row in rows:
            try:
                trigger = self._factory.build(row.id, row.classpath, row.kwargs)
            except Exception as exc:  # a missing class, bad kwargs: the trigger's failure
                log.warning("cannot build trigger %s (%s): %s", row.id, row.classpath, exc)
                self.runner.report(failure_of(row.id, exc))
                continue
            self.runner.add(row.id, trigger)

    def _my_id(self) -> int:
        component_id = self.pulse.component_id
        assert component_id is not None, "the first heartbeat is written before any pass"
        return component_id

    def _describe(self) -> tuple[str, Any]:
        """What the heartbeat records: the count of running triggers and the capacity."""
        state = "fenced" if self._fenced else "running"
        return state, {"triggers": len(self.runner.running()), "capacity": self.settings.capacity}


def _write(session: Session, *, me: int, batch: list[Outcome]) -> Written:
    return write_outcomes(session, me, batch)
