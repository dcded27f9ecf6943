"""The Celery executor: the scheduler publishes each dispatch to its queue on RabbitMQ.

The broker holds the backlog, so :meth:`CeleryExecutor.free_slots` sets no limit. The
dispatches of one loop iteration are published together and confirmed by the broker
together (:class:`~cluster.executors.celery_publisher.ConfirmedPublisher`); a dispatch
counts as sent only once confirmed. What was not confirmed is published again at
once on a new connection (kombu fails over to the next node), and if that fails too,
kept and published again every :data:`RETRY_INTERVAL` seconds (the instance stays
``queued`` in the metastore meanwhile, and the queued timeout re-sends it should this
scheduler die first). Finished events from the workers wake the loop through
:class:`~cluster.executors.events.EventListener`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from celery import Celery

from cluster.config import Settings
from cluster.executors.base import Dispatch
from cluster.executors.celery_app import build_celery_app, queue_names
from cluster.executors.celery_publisher import (
    BROKER_ERRORS,
    ConfirmedPublisher,
    PublishResult,
)
from cluster.executors.events import EventListener, FinishedEvent, quiet_vendor_logs
from cluster.executors.local import OnFinished

log = logging.getLogger(__name__)

#: publishing attempts per call before the unconfirmed dispatches are kept
ATTEMPTS = 2
#: seconds between attempts to publish kept dispatches while the broker is away, so an
#: outage does not slow every loop iteration by the reconnection attempts
RETRY_INTERVAL = 5.0


class CeleryExecutor:
    """Publishes to RabbitMQ through ``app``; ``events`` (optional) wakes the loop."""

    def __init__(
        self,
        app: Celery,
        *,
        queues: list[str],
        events: EventListener | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._publisher = ConfirmedPublisher(app, queues=queues)
        self._events = events
        self._clock = clock
        self._unsent: list[Dispatch] = []
        self._failing = False
        self._next_attempt = 0.0

    @property
    def unsent(self) -> int:
        """How many dispatches wait for the broker to come back."""
        return len(self._unsent)

    def start(self) -> None:
        """Connect, declare the configured queues, start listening for finished events.

        A broker that cannot be reached is logged, not fatal: publishing retries.
        """
        if self._events is not None:
            self._events.start()
        try:
            self._publisher.open()
        except BROKER_ERRORS as exc:
            log.warning("RabbitMQ is not reachable yet; will retry when sending: %s", exc)
            self._publisher.close()

    def send(self, dispatches: list[Dispatch]) -> None:
        """Publish every dispatch (and any kept from before); never raises for the broker.

        While the broker is away, dispatches are only kept, and publishing is tried
        again every :data:`RETRY_INTERVAL` seconds.
        """
        pending, self._unsent = [*self._unsent, *dispatches], []
        if not pending:
            return
        if self._failing and self._clock() < self._next_attempt:
            self._unsent = pending
            return
        result = PublishResult(pending)
        for _ in range(ATTEMPTS):
            result = self._publisher.publish(result.unconfirmed)
            if not result.unconfirmed:
                break
        self._unsent = result.unconfirmed
        if not self._unsent:
            if self._failing:
                log.info("RabbitMQ takes dispatches again")
                self._failing = False
            return
        self._next_attempt = self._clock() + RETRY_INTERVAL
        if not self._failing:
            log.warning(
                "RabbitMQ did not confirm %d dispatches; kept to publish again: %s",
                len(self._unsent),
                result.error,
            )
            self._failing = True

    def free_slots(self) -> int | None:
        """``None``: the broker queues. Called every iteration, so kept dispatches go then."""
        if self._unsent:
            self.send([])
        return None

    def stop(self, *, drain: bool) -> None:
        """Stop listening and close the connection; the workers own running tries."""
        if self._events is not None:
            self._events.stop()
        if self._unsent:
            log.warning(
                "%d dispatches were never published; the queued timeout re-sends them",
                len(self._unsent),
            )
        self._publisher.close()


def build_celery_executor(settings: Settings, on_finished: OnFinished) -> CeleryExecutor:
    """The executor of ``core.executor = celery``, waking the loop on finished events."""
    quiet_vendor_logs()
    app = build_celery_app(settings)

    def wake(event: FinishedEvent) -> None:
        on_finished(event.message, event.state)

    events = EventListener(settings.celery.broker_urls, settings.celery.events_exchange, wake)
    return CeleryExecutor(app, queues=queue_names(settings), events=events)
