"""RabbitMQ topology and health: declare what Tradewind needs, and read how it is doing.

:func:`setup_topology` declares, idempotently, the "finished" events fanout exchange
and one durable quorum queue per configured task queue, each bound to a direct
exchange of its own name, exactly as the Celery app
(:func:`cluster.executors.celery_app.quorum_queue`) declares them, so the two never
disagree (a unit test compares them); and, through the management API, the vhost
policy of ``configs/rabbitmq/definitions.json``. Declaring a queue only once the
nodes have formed the cluster matters: a quorum queue's replicas are chosen when it
is declared.

:func:`read_status` tells per queue the messages ready and unacknowledged and the
consumers, and per node whether it runs. AMQP gives ready and consumers; unacked and
the cluster's view of its nodes come from the management API when it answers;
whatever could not be read is ``None`` and explained in :attr:`BrokerStatus.unreadable`.

This module never imports the executors: the web reads queue depths through it.
pika's errors become :class:`~cluster.errors.BrokerError` here, where they enter.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import pika
import pika.exceptions

from cluster.config import CelerySettings
from cluster.deploy.management import ManagementApi, derive_management_urls, safe_url
from cluster.errors import BrokerError

log = logging.getLogger(__name__)

#: seconds to wait for a TCP connection and the AMQP handshake of one node
CONNECT_TIMEOUT = 5.0
#: the arguments of every task queue, as the Celery app declares them
QUEUE_ARGUMENTS: dict[str, Any] = {"x-queue-type": "quorum"}
#: the vhost policy of configs/rabbitmq/definitions.json: a message redelivered this
#: often (a task that kills its worker each time) is dropped instead of looping forever
POLICY_NAME = "task-queues"
POLICY: dict[str, Any] = {
    "pattern": r"^(?!amq\.|celery|tradewind\.).+",
    "apply-to": "queues",
    "priority": 0,
    "definition": {"delivery-limit": 50},
}
_PIKA_ERRORS = (pika.exceptions.AMQPError, OSError)


@dataclass(frozen=True)
class Step:
    """One thing :func:`setup_topology` declared: ``created``, ``exists``, ``updated`` or
    ``skipped`` (with the reason in ``detail``)."""

    kind: str
    name: str
    outcome: str
    detail: str = ""


@dataclass(frozen=True)
class QueueStatus:
    """One task queue; a count is ``None`` when it could not be read."""

    name: str
    exists: bool
    ready: int | None = None
    unacked: int | None = None
    consumers: int | None = None


@dataclass(frozen=True)
class NodeStatus:
    """One RabbitMQ node: its AMQP endpoint (``host:port``, or ``""`` for a member known
    only from the cluster's view), its name when known, and whether it runs."""

    endpoint: str
    name: str | None
    running: bool
    detail: str = ""


@dataclass(frozen=True)
class BrokerStatus:
    queues: list[QueueStatus]
    nodes: list[NodeStatus]
    #: what could not be read, and why
    unreadable: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def task_queue_names(celery: CelerySettings) -> list[str]:
    """``celery.default_queue`` then ``celery.queues``, each once (as the Celery app)."""
    names = [celery.default_queue, *celery.queues]
    return list(dict.fromkeys(name for name in names if name))


def management_urls(celery: CelerySettings) -> list[str]:
    """``celery.management_urls``, or one derived from each broker URL (port 15672)."""
    return list(celery.management_urls) or derive_management_urls(celery.broker_urls)


def vhost_of(celery: CelerySettings) -> str:
    """The virtual host of the first broker URL (``/`` when it names none)."""
    if not celery.broker_urls:
        return "/"
    return str(pika.URLParameters(celery.broker_urls[0]).virtual_host)


def endpoint(url: str) -> str:
    """``host:port`` of an AMQP URL: how output names a node without its password."""
    parameters = pika.URLParameters(url)
    return f"{parameters.host}:{parameters.port}"


def quiet_pika() -> None:
    """Keep pika's errors only: it logs expected refusals (the passive declare of a queue
    not declared yet) and every connection step as warnings and info lines."""
    logging.getLogger("pika").setLevel(logging.ERROR)


# --- connections ---------------------------------------------------------------------


def connect_node(url: str, *, timeout: float = CONNECT_TIMEOUT) -> pika.BlockingConnection:
    """One attempt at one node.

    :raises BrokerError: naming the endpoint and pika's reason.
    """
    try:
        parameters = pika.URLParameters(url)
    except (ValueError, TypeError) as exc:
        raise BrokerError(f"{safe_url(url)}: not an AMQP URL: {exc}") from exc
    parameters.socket_timeout = timeout
    parameters.blocked_connection_timeout = timeout
    parameters.connection_attempts = 1
    try:
        return pika.BlockingConnection(parameters)
    except _PIKA_ERRORS as exc:
        raise BrokerError(f"cannot connect to {safe_url(url)}: {_reason(exc)}") from exc


def connect(urls: Sequence[str]) -> pika.BlockingConnection:
    """A connection to the first node of ``urls`` that answers.

    :raises BrokerError: when ``urls`` is empty or no node answered.
    """
    if not urls:
        raise BrokerError("celery.broker_urls is empty: give every RabbitMQ node's URL")
    errors = []
    for url in urls:
        try:
            return connect_node(url)
        except BrokerError as exc:
            errors.append(str(exc))
    raise BrokerError(f"no RabbitMQ node answered: {'; '.join(errors)}")


def _reason(exc: BaseException) -> str:
    """pika nests the socket's error in its own (``AMQPConnectionError(inner)``): name both."""
    inner = exc.args[0] if exc.args and isinstance(exc.args[0], BaseException) else None
    if inner is not None:
        return _reason(inner)
    text = repr(exc) if not exc.args else str(exc)
    return text if text.startswith(type(exc).__name__) else f"{type(exc).__name__}: {text}"


def _close(connection: pika.BlockingConnection) -> None:
    if connection.is_open:
        try:
            connection.close()
        except _PIKA_ERRORS:
            log.debug("closing a RabbitMQ connection failed", exc_info=True)


def _exists(connection: pika.BlockingConnection, declare: Callable[[Any], object]) -> bool:
    """Whether a passive declare succeeds (a 404 closes its channel: use a fresh one)."""
    channel = connection.channel()
    try:
        declare(channel)
    except pika.exceptions.ChannelClosedByBroker as exc:
        if exc.reply_code == 404:
            return False
        raise
    channel.close()
    return True


# --- topology ------------------------------------------------------------------------


def setup_topology(celery: CelerySettings) -> list[Step]:
    """Declare the events exchange, the task queues and the policy; safe to run again.

    :raises BrokerError: when no node answers, or an existing queue or exchange was
        declared with other settings (the message says which and what to do).
    """
    connection = connect(celery.broker_urls)
    try:
        steps = [_declare_events_exchange(connection, celery.events_exchange)]
        for name in task_queue_names(celery):
            steps.append(_declare_task_queue(connection, name))
    except pika.exceptions.ChannelClosedByBroker as exc:
        raise BrokerError(
            f"RabbitMQ refused a declaration ({exc.reply_code}): {exc.reply_text}. An object "
            "of that name exists with other settings: drain and delete it, then run again"
        ) from exc
    except _PIKA_ERRORS as exc:
        raise BrokerError(f"RabbitMQ connection lost during setup: {_reason(exc)}") from exc
    finally:
        _close(connection)
    steps.append(_apply_policy(celery))
    return steps


def _declare_events_exchange(connection: pika.BlockingConnection, name: str) -> Step:
    existed = _exists(connection, lambda ch: ch.exchange_declare(exchange=name, passive=True))
    channel = connection.channel()
    channel.exchange_declare(exchange=name, exchange_type="fanout", durable=True)
    channel.close()
    return Step("exchange", name, "exists" if existed else "created", "fanout, durable")


def _declare_task_queue(connection: pika.BlockingConnection, name: str) -> Step:
    existed = _exists(connection, lambda ch: ch.queue_declare(queue=name, passive=True))
    channel = connection.channel()
    channel.exchange_declare(exchange=name, exchange_type="direct", durable=True)
    channel.queue_declare(queue=name, durable=True, arguments=dict(QUEUE_ARGUMENTS))
    channel.queue_bind(queue=name, exchange=name, routing_key=name)
    channel.close()
    return Step("queue", name, "exists" if existed else "created", "quorum, durable")


def _apply_policy(celery: CelerySettings) -> Step:
    """The vhost policy through the first management API that answers, else skipped."""
    vhost = vhost_of(celery)
    errors = []
    for url in management_urls(celery):
        try:
            api = ManagementApi(url)
            current = api.policy(vhost, POLICY_NAME)
            wanted = {key: current.get(key) for key in POLICY} if current else None
            if wanted == POLICY:
                return Step("policy", POLICY_NAME, "exists", "delivery-limit")
            api.put_policy(vhost, POLICY_NAME, POLICY)
            return Step("policy", POLICY_NAME, "updated" if current else "created")
        except BrokerError as exc:
            errors.append(str(exc))
    return Step(
        "policy",
        POLICY_NAME,
        "skipped",
        f"{'; '.join(errors) or 'no management URL'} (definitions.json also defines it)",
    )


# --- status --------------------------------------------------------------------------


def read_status(celery: CelerySettings) -> BrokerStatus:
    """Queues and nodes as far as they can be read; never raises for an unreachable node."""
    unreadable: list[str] = []
    api, names = _management_view(celery, unreadable)
    nodes = _node_statuses(celery, api, names, unreadable)
    if api is not None:
        queues = _queues_from_api(api, celery, unreadable)
    else:
        queues = _queues_from_amqp(celery, unreadable)
    return BrokerStatus(queues, nodes, unreadable)


def _management_view(
    celery: CelerySettings, unreadable: list[str]
) -> tuple[ManagementApi | None, dict[int, str]]:
    """The first management API that answers, and node names by broker URL index."""
    urls = management_urls(celery)
    aligned = len(urls) == len(celery.broker_urls)
    names: dict[int, str] = {}
    first: ManagementApi | None = None
    errors = []
    for index, url in enumerate(urls):
        try:
            api = ManagementApi(url)
            node = api.overview().get("node")
        except BrokerError as exc:
            errors.append(str(exc))
            continue
        first = first or api
        if aligned and isinstance(node, str):
            names[index] = node
    if first is None:
        detail = "; ".join(errors) or "no management URL configured"
        unreadable.append(
            f"unacked counts and the cluster's view of its nodes: management API "
            f"unreachable ({detail})"
        )
    return first, names


def _node_statuses(
    celery: CelerySettings,
    api: ManagementApi | None,
    names: dict[int, str],
    unreadable: list[str],
) -> list[NodeStatus]:
    nodes = []
    for index, url in enumerate(celery.broker_urls):
        try:
            _close(connect_node(url))
        except BrokerError as exc:
            nodes.append(NodeStatus(endpoint(url), names.get(index), False, str(exc)))
            continue
        nodes.append(NodeStatus(endpoint(url), names.get(index), True))
    if api is None:
        return nodes
    try:
        members = api.nodes()
    except BrokerError as exc:
        unreadable.append(f"cluster members: {exc}")
        return nodes
    known = set(names.values())
    for member in members:
        name = str(member.get("name", "?"))
        if name not in known:
            running = bool(member.get("running"))
            detail = "" if running else "the cluster reports it down"
            nodes.append(NodeStatus("", name, running, detail))
    return nodes


def _queues_from_api(
    api: ManagementApi, celery: CelerySettings, unreadable: list[str]
) -> list[QueueStatus]:
    vhost = vhost_of(celery)
    queues = []
    for name in task_queue_names(celery):
        try:
            found = api.queue(vhost, name)
        except BrokerError as exc:
            unreadable.append(f"queue {name}: {exc}")
            queues.append(QueueStatus(name, exists=True))
            continue
        if found is None:
            queues.append(QueueStatus(name, exists=False))
            continue
        queues.append(
            QueueStatus(
                name,
                exists=True,
                ready=_count(found.get("messages_ready")),
                unacked=_count(found.get("messages_unacknowledged")),
                consumers=_count(found.get("consumers")),
            )
        )
    return queues


def _queues_from_amqp(celery: CelerySettings, unreadable: list[str]) -> list[QueueStatus]:
    names = task_queue_names(celery)
    try:
        connection = connect(celery.broker_urls)
    except BrokerError as exc:
        unreadable.append(f"queues: {exc}")
        return [QueueStatus(name, exists=True) for name in names]
    queues = []
    try:
        for name in names:
            channel = connection.channel()
            try:
                declared = channel.queue_declare(queue=name, passive=True)
            except pika.exceptions.ChannelClosedByBroker:
                queues.append(QueueStatus(name, exists=False))
                continue
            method = declared.method
            queues.append(
                QueueStatus(name, True, method.message_count, None, method.consumer_count)
            )
            channel.close()
    except _PIKA_ERRORS as exc:
        unreadable.append(f"queues: connection lost: {_reason(exc)}")
        read = {queue.name for queue in queues}
        queues += [QueueStatus(name, exists=True) for name in names if name not in read]
    finally:
        _close(connection)
    return queues


def _count(value: object) -> int | None:
    """A statistic as a count; ``None`` while RabbitMQ has not reported it yet."""
    return int(value) if isinstance(value, int | float) else None
