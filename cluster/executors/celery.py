"""The Celery executor: the scheduler publishes each dispatch to its queue on RabbitMQ.

The broker holds the backlog, so :meth:`CeleryExecutor.free_slots` sets no limit. A
publish waits for the broker's confirm; when no broker node takes a message even after
kombu's retries across the failover list, the dispatch is kept and published again on
the next loop iteration (the instance stays ``queued`` in the metastore meanwhile, and
the queued timeout re-sends it should this scheduler die first). Finished events from
the workers wake the loop through :class:`~cluster.executors.events.EventListener`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from amqp.exceptions import AMQPError
from celery import Celery
from kombu import Connection
from kombu.exceptions import KombuError

from cluster.config import Settings
from cluster.executors.base import Dispatch
from cluster.executors.celery_app import (
    TASK_NAME,
    build_celery_app,
    queue_names,
    quorum_queue,
)
from cluster.executors.events import EventListener, FinishedEvent, quiet_vendor_logs
from cluster.executors.local import OnFinished

log = logging.getLogger(__name__)

#: how kombu retries one publish (across the failover list) before the dispatch is kept
PUBLISH_RETRY = {"max_retries": 3, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 2.0}
#: attempts to reach a broker node when the executor starts
START_RETRIES = 3
#: seconds between attempts to publish kept dispatches while the broker is away, so an
#: outage does not slow every loop iteration by kombu's retries
RETRY_INTERVAL = 5.0

#: what kombu and py-amqp raise for an unreachable or failing broker
BROKER_ERRORS: tuple[type[BaseException], ...] = (OSError, KombuError, AMQPError)


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
        self._app = app
        self._queues = queues
        self._events = events
        self._clock = clock
        self._connection: Connection | None = None
        self._producer: Any = None
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
            self._open()
        except BROKER_ERRORS as exc:
            log.warning("RabbitMQ is not reachable yet; will retry when sending: %s", exc)
            self._close()

    def send(self, dispatches: list[Dispatch]) -> None:
        """Publish every dispatch (and any kept from before); never raises for the broker.

        While the broker is away, dispatches are only kept, and publishing is tried
        again every :data:`RETRY_INTERVAL` seconds.
        """
        pending, self._unsent = [*self._unsent, *dispatches], []
        if self._failing and self._clock() < self._next_attempt:
            self._unsent = pending
            return
        for number, dispatch in enumerate(pending):
            try:
                self._publish(dispatch)
            except BROKER_ERRORS as exc:
                self._unsent = pending[number:]
                self._close()
                self._next_attempt = self._clock() + RETRY_INTERVAL
                if not self._failing:
                    log.warning(
                        "RabbitMQ refused or lost %d dispatches; kept to publish again: %s",
                        len(self._unsent),
                        exc,
                    )
                    self._failing = True
                return
        if self._failing and pending:
            log.info("RabbitMQ takes dispatches again")
            self._failing = False

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
        self._close()

    # --- internals ------------------------------------------------------------------

    def _open(self) -> Any:
        if self._producer is not None:
            return self._producer
        connection = self._app.connection_for_write()
        connection.ensure_connection(
            max_retries=START_RETRIES, interval_start=0.2, interval_step=0.5, interval_max=1.0
        )
        channel = connection.default_channel
        for name in self._queues:
            quorum_queue(name).bind(channel).declare()
        self._connection = connection
        self._producer = self._app.amqp.Producer(connection)
        return self._producer

    def _publish(self, dispatch: Dispatch) -> None:
        producer = self._open()
        self._app.send_task(
            TASK_NAME,
            args=[dispatch.message.to_dict()],
            queue=quorum_queue(dispatch.queue),
            producer=producer,
            retry=True,
            retry_policy=PUBLISH_RETRY,
        )

    def _close(self) -> None:
        connection, self._connection, self._producer = self._connection, None, None
        if connection is not None:
            try:
                connection.release()
            except Exception:
                log.debug("closing the broker connection failed", exc_info=True)


def build_celery_executor(settings: Settings, on_finished: OnFinished) -> CeleryExecutor:
    """The executor of ``core.executor = celery``, waking the loop on finished events."""
    quiet_vendor_logs()
    app = build_celery_app(settings)

    def wake(event: FinishedEvent) -> None:
        on_finished(event.message, event.state)

    events = EventListener(settings.celery.broker_urls, settings.celery.events_exchange, wake)
    return CeleryExecutor(app, queues=queue_names(settings), events=events)
