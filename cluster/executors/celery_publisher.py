"""Publishing dispatches to RabbitMQ in batches, with one wait for the broker's confirms.

Waiting for a confirm after every message costs the scheduler loop one broker round
trip per task (a quorum queue confirms once its log is replicated): at hundreds of
tasks a second that wait, not the publishing, bounds the loop. So the executor
publishes a whole batch on one channel in confirm mode and then waits once until
the broker confirmed (``basic.ack``) or refused (``basic.nack``) each message.

A dispatch counts as sent only once its confirm arrived. Everything else of the batch
(refused, unconfirmed when the connection broke, or when the confirms did not come
within :data:`CONFIRM_TIMEOUT`) is handed back to the caller to publish again: a
message the broker did take but whose confirm was lost is then delivered twice,
which the runner's claim makes harmless.

The messages are Celery's own (protocol 2, JSON), built by ``app.send_task`` on a
producer whose channel this module owns, so a ``tradewind worker`` consumes them as
before.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from amqp.exceptions import AMQPError
from celery import Celery
from kombu import Connection
from kombu.exceptions import KombuError

from cluster.errors import BrokerError
from cluster.executors.base import Dispatch
from cluster.executors.celery_app import TASK_NAME, quorum_queue

log = logging.getLogger(__name__)

#: seconds to wait for the confirms of one batch before the rest is published again
#: (a quorum queue that is electing a new leader after a node died can take seconds)
CONFIRM_TIMEOUT = 10.0
#: most messages published before waiting for their confirms
BATCH_SIZE = 500
#: attempts to reach a broker node when (re)connecting
CONNECT_RETRIES = 3

#: what kombu and py-amqp raise for an unreachable or failing broker
BROKER_ERRORS: tuple[type[BaseException], ...] = (OSError, KombuError, AMQPError)


@dataclass
class PublishResult:
    """What a :meth:`ConfirmedPublisher.publish` call left undone."""

    #: dispatches the broker did not confirm, in their order: publish them again
    unconfirmed: list[Dispatch] = field(default_factory=list)
    #: why (the broker's error as the cause, a timeout or a refusal); ``None`` when
    #: every dispatch was confirmed
    error: BrokerError | None = None


class ConfirmsPending:
    """Which delivery tags of a confirm-mode channel still wait for the broker's answer.

    RabbitMQ numbers the messages published on a channel in confirm mode 1, 2, 3, …
    and answers each with ``basic.ack`` or ``basic.nack``; one answer may cover every
    tag up to its own (``multiple``).
    """

    def __init__(self) -> None:
        self._next_tag = 1
        self.waiting: set[int] = set()
        self.refused: set[int] = set()

    def published(self) -> int:
        """The tag of the message just published."""
        tag = self._next_tag
        self._next_tag += 1
        self.waiting.add(tag)
        return tag

    def acked(self, delivery_tag: int, multiple: bool) -> None:
        self.waiting -= self._covered(delivery_tag, multiple)

    def nacked(self, delivery_tag: int, multiple: bool) -> None:
        covered = self._covered(delivery_tag, multiple)
        self.waiting -= covered
        self.refused |= covered

    def _covered(self, delivery_tag: int, multiple: bool) -> set[int]:
        if not multiple:
            return {delivery_tag} & self.waiting
        return {tag for tag in self.waiting if tag <= delivery_tag}


class ConfirmedPublisher:
    """Publishes dispatches through ``app`` on one lazily opened confirm-mode channel.

    Not thread-safe: the scheduler loop owns it. Any broker error closes the
    connection; the next call opens a new one (kombu fails over along
    ``celery.broker_urls``).

    :param queues: declared (quorum queues) on every new connection.
    """

    def __init__(
        self,
        app: Celery,
        *,
        queues: Sequence[str],
        confirm_timeout: float = CONFIRM_TIMEOUT,
        batch_size: int = BATCH_SIZE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._app = app
        self._queues = list(queues)
        self._confirm_timeout = confirm_timeout
        self._batch_size = max(1, batch_size)
        self._clock = clock
        self._connection: Connection | None = None
        self._channel: Any = None
        self._producer: Any = None
        self._pending = ConfirmsPending()

    def open(self) -> None:
        """Connect, declare the queues and put a channel in confirm mode (if not yet).

        :raises OSError, KombuError, AMQPError: no broker node answered.
        """
        if self._producer is not None:
            return
        # confirms are waited for here, per batch: kombu must not wait per message
        connection = self._app.connection_for_write(transport_options={"confirm_publish": False})
        try:
            connection.ensure_connection(
                max_retries=CONNECT_RETRIES, interval_start=0.2, interval_step=0.5, interval_max=1.0
            )
            channel = connection.channel()
            for name in self._queues:
                quorum_queue(name).bind(channel).declare()
            channel.confirm_select()
        except BaseException:
            _release(connection)
            raise
        pending = ConfirmsPending()
        channel.events["basic_ack"].add(pending.acked)
        channel.events["basic_nack"].add(pending.nacked)
        self._connection, self._channel, self._pending = connection, channel, pending
        self._producer = self._app.amqp.Producer(channel)

    def publish(self, dispatches: Sequence[Dispatch]) -> PublishResult:
        """Publish ``dispatches`` in batches, each confirmed before the next; never raises
        for the broker: what was not confirmed comes back in the result, in order."""
        for start in range(0, len(dispatches), self._batch_size):
            batch = dispatches[start : start + self._batch_size]
            result = self._publish_batch(batch)
            if result.unconfirmed:
                result.unconfirmed.extend(dispatches[start + len(batch) :])
                return result
        return PublishResult()

    def close(self) -> None:
        """Drop the connection (idempotent)."""
        connection = self._connection
        self._connection, self._channel, self._producer = None, None, None
        if connection is not None:
            _release(connection)

    # --- internals ------------------------------------------------------------------

    def _publish_batch(self, batch: Sequence[Dispatch]) -> PublishResult:
        tags: list[int] = []
        try:
            self.open()
            for dispatch in batch:
                self._send(dispatch)
                tags.append(self._pending.published())
            self._wait_for_confirms()
        except BROKER_ERRORS as exc:
            self.close()
            done = set(tags) - self._pending.waiting - self._pending.refused
            unconfirmed = [d for d, tag in _tagged(batch, tags) if tag not in done]
            error = BrokerError(f"publishing to RabbitMQ failed: {exc!r}")
            error.__cause__ = exc
            return PublishResult(unconfirmed, error)
        refused = [d for d, tag in _tagged(batch, tags) if tag in self._pending.refused]
        self._pending.refused.clear()
        if refused:
            return PublishResult(
                refused, BrokerError(f"RabbitMQ refused {len(refused)} messages (basic.nack)")
            )
        return PublishResult()

    def _send(self, dispatch: Dispatch) -> None:
        self._app.send_task(
            TASK_NAME,
            args=[dispatch.message.to_dict()],
            queue=quorum_queue(dispatch.queue),
            producer=self._producer,
            retry=False,
        )

    def _wait_for_confirms(self) -> None:
        """Read the broker's answers until none is missing.

        :raises TimeoutError: they did not all come within the confirm timeout.
        """
        assert self._connection is not None
        deadline = self._clock() + self._confirm_timeout
        while self._pending.waiting:
            remaining = deadline - self._clock()
            if remaining <= 0:
                raise TimeoutError(
                    f"RabbitMQ confirmed no more messages within {self._confirm_timeout:g} s "
                    f"({len(self._pending.waiting)} missing)"
                )
            self._connection.drain_events(timeout=remaining)


def _tagged(batch: Sequence[Dispatch], tags: list[int]) -> list[tuple[Dispatch, int | None]]:
    """Each dispatch with its delivery tag; ``None`` for those never published."""
    padded: list[int | None] = [*tags, *([None] * (len(batch) - len(tags)))]
    return list(zip(batch, padded, strict=True))


def _release(connection: Connection) -> None:
    try:
        connection.release()
    except Exception:
        log.debug("closing the broker connection failed", exc_info=True)
