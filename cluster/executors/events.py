"""The "finished" events: a worker tells every scheduler that a try ended.

After the runner recorded a try's end state, the worker publishes a tiny JSON message
(the task message and the state) to a fanout exchange; every scheduler listens on an
exclusive, auto-deleted queue of its own bound to it, and wakes its loop at once
instead of at its next poll. The events are hints, never the truth (the metastore is):
a lost event costs one poll interval, so publishing never retries for long and never
fails a try, and a scheduler whose broker is unreachable simply keeps polling.

pika's errors are turned into :class:`~cluster.errors.BrokerError` here, where they enter.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pika
import pika.exceptions

from cluster.errors import BrokerError
from cluster.messages import TaskMessage
from cluster.states import TaskState

log = logging.getLogger(__name__)

#: seconds to wait for a TCP connection and the AMQP handshake of one node
CONNECT_TIMEOUT = 5.0
#: first and longest wait between the listener's reconnection attempts
BACKOFF_START = 0.5
BACKOFF_MAX = 30.0

_PIKA_ERRORS = (pika.exceptions.AMQPError, OSError)


def quiet_vendor_logs() -> None:
    """pika logs every step of every connection at INFO: keep its warnings only."""
    logging.getLogger("pika").setLevel(logging.WARNING)


@dataclass(frozen=True)
class FinishedEvent:
    """One try ended: which one, and the state the runner recorded."""

    message: TaskMessage
    state: TaskState | None

    def to_json(self) -> bytes:
        data = {**self.message.to_dict(), "state": str(self.state) if self.state else None}
        return json.dumps(data, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, body: bytes) -> FinishedEvent | None:
        """The event in ``body``; ``None`` (and a log line) for anything malformed."""
        try:
            data = json.loads(body)
            state = data.get("state")
            return cls(TaskMessage.from_dict(data), TaskState(state) if state else None)
        except (ValueError, KeyError, TypeError, AttributeError):
            log.warning("ignoring a malformed finished event: %r", body[:200])
            return None


def connect(urls: Sequence[str], *, first: int = 0) -> tuple[pika.BlockingConnection, int]:
    """A blocking connection to the first node of ``urls`` (from index ``first``) that answers.

    :returns: the connection and the index of the node it reached.
    :raises BrokerError: when no node answered, naming the last error.
    """
    if not urls:
        raise BrokerError("celery.broker_urls is empty: no RabbitMQ node to connect to")
    last: Exception | None = None
    for step in range(len(urls)):
        index = (first + step) % len(urls)
        parameters = pika.URLParameters(urls[index])
        parameters.socket_timeout = CONNECT_TIMEOUT
        parameters.blocked_connection_timeout = CONNECT_TIMEOUT
        parameters.connection_attempts = 1
        try:
            return pika.BlockingConnection(parameters), index
        except _PIKA_ERRORS as exc:
            last = exc
    raise BrokerError(f"no RabbitMQ node of {len(urls)} answered: {last!r}") from last


def declare_exchange(channel: Any, exchange: str) -> None:
    """The fanout exchange, durable (as ``configs/rabbitmq/definitions.json`` defines it)."""
    channel.exchange_declare(exchange=exchange, exchange_type="fanout", durable=True)


class EventPublisher:
    """Publishes finished events from one worker process over one lazy connection.

    Not thread-safe: each pool process owns one. An idle connection may have been
    closed by the broker (missed heartbeats, node restart); a failed publish therefore
    reconnects and tries once more, then gives up with one warning per outage.
    """

    def __init__(self, urls: Sequence[str], exchange: str) -> None:
        self._urls = list(urls)
        self._exchange = exchange
        self._connection: pika.BlockingConnection | None = None
        self._channel: Any = None
        self._node = 0
        self._failing = False

    def publish(self, message: TaskMessage, state: TaskState | None) -> bool:
        """Publish that ``message`` ended in ``state``; ``False`` when the broker is away."""
        body = FinishedEvent(message, state).to_json()
        error: Exception | None = None
        for _ in range(2):
            try:
                channel = self._open()
                channel.basic_publish(
                    exchange=self._exchange,
                    routing_key="",
                    body=body,
                    properties=pika.BasicProperties(content_type="application/json"),
                )
            except (BrokerError, *_PIKA_ERRORS) as exc:
                self.close()
                self._node += 1
                error = exc
                continue
            if self._failing:
                log.info("finished events are published again")
                self._failing = False
            return True
        if not self._failing:
            log.warning("cannot publish finished events (schedulers will poll): %s", error)
            self._failing = True
        return False

    def close(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None and connection.is_open:
            try:
                connection.close()
            except _PIKA_ERRORS:
                log.debug("closing the events connection failed", exc_info=True)

    def _open(self) -> Any:
        if self._channel is not None and self._channel.is_open:
            return self._channel
        self.close()
        self._connection, self._node = connect(self._urls, first=self._node)
        channel = self._connection.channel()
        declare_exchange(channel, self._exchange)
        self._channel = channel
        return channel


class EventListener:
    """Consumes finished events in a background thread and hands each to ``on_event``.

    While the broker is unreachable it logs one warning (not one per attempt) and
    reconnects with exponential backoff; the scheduler polls meanwhile.

    :param backoff_start, backoff_max: the first and the longest wait between attempts.
    """

    def __init__(
        self,
        urls: Sequence[str],
        exchange: str,
        on_event: Callable[[FinishedEvent], None],
        *,
        backoff_start: float = BACKOFF_START,
        backoff_max: float = BACKOFF_MAX,
    ) -> None:
        self._urls = list(urls)
        self._exchange = exchange
        self._on_event = on_event
        self._backoff_start = backoff_start
        self._backoff_max = backoff_max
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: set while the listener consumes; tests wait on it
        self.consuming = threading.Event()
        #: failed connection attempts so far
        self.failures = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="finished-events", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        delay = self._backoff_start
        warned = False
        node = 0
        while not self._stop.is_set():
            try:
                connection, node = connect(self._urls, first=node)
            except BrokerError as exc:
                self.failures += 1
                if not warned:
                    log.warning("finished events unavailable, polling meanwhile: %s", exc)
                    warned = True
                self._stop.wait(delay)
                delay = min(delay * 2, self._backoff_max)
                continue
            if warned:
                log.info("finished events: connected again to %s", _safe(self._urls[node]))
                warned = False
            delay = self._backoff_start
            try:
                self._consume(connection)
            except _PIKA_ERRORS as exc:
                log.warning("finished events connection lost, reconnecting: %r", exc)
                warned = True
                node += 1
            except Exception:
                # never let the thread die: without it the scheduler only polls
                log.exception("finished events listener failed; reconnecting")
                warned = True
                self._stop.wait(delay)
            finally:
                self.consuming.clear()
                _close_quietly(connection)

    def _consume(self, connection: pika.BlockingConnection) -> None:
        channel = connection.channel()
        declare_exchange(channel, self._exchange)
        # an explicit classic type: the vhost's default type (quorum) cannot be exclusive
        declared = channel.queue_declare(
            queue="", exclusive=True, auto_delete=True, arguments={"x-queue-type": "classic"}
        )
        queue = declared.method.queue
        channel.queue_bind(queue=queue, exchange=self._exchange)
        channel.basic_consume(queue=queue, on_message_callback=self._deliver, auto_ack=True)
        self.consuming.set()
        while not self._stop.is_set():
            connection.process_data_events(time_limit=0.5)

    def _deliver(self, channel: Any, method: Any, properties: Any, body: bytes) -> None:
        event = FinishedEvent.from_json(body)
        if event is None:
            return
        try:
            self._on_event(event)
        except Exception:
            log.exception("finished-event callback failed")


def _close_quietly(connection: pika.BlockingConnection) -> None:
    if connection.is_open:
        try:
            connection.close()
        except _PIKA_ERRORS:
            log.debug("closing the events connection failed", exc_info=True)


def _safe(url: str) -> str:
    """``url`` without its password, for log lines."""
    parameters = pika.URLParameters(url)
    return f"{parameters.host}:{parameters.port}"
