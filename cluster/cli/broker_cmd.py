"""``tradewind broker``: declare RabbitMQ's topology and read its state.

``setup`` is safe to run any number of times (on deployment, after adding a queue to
``celery.queues``); ``status`` prints one line per queue and per node, and below them
what could not be read (without the management plugin: unacked counts).
"""

from __future__ import annotations

from typing import Any

import click

from cluster.cli.app import App, pass_app
from cluster.cli.output import emit, output_option
from cluster.config import CelerySettings
from cluster.deploy.rabbitmq import (
    BrokerStatus,
    QueueStatus,
    quiet_pika,
    read_status,
    setup_topology,
)
from cluster.errors import ConfigError


@click.group("broker")
def broker_group() -> None:
    """Set up and inspect the RabbitMQ broker."""


@broker_group.command("setup")
@output_option
@pass_app
def setup(app: App, output: str) -> None:
    """Declare the events exchange, the task queues and the queue policy (idempotent)."""
    quiet_pika()
    steps = setup_topology(configured(app.settings.celery))
    rows = [
        {"kind": s.kind, "name": s.name, "outcome": s.outcome, "detail": s.detail} for s in steps
    ]
    emit(rows, output, columns=["kind", "name", "outcome", "detail"])


@broker_group.command("status")
@output_option
@pass_app
def status(app: App, output: str) -> None:
    """Messages ready and unacked and consumers per queue; each node running or down.

    Exits 1 when a node is down or a queue is missing.
    """
    quiet_pika()
    found = read_status(configured(app.settings.celery))
    if output in ("json", "yaml"):
        emit(found.to_dict(), output)
    else:
        _print_tables(found, output)
    if not all(n.running for n in found.nodes) or not all(q.exists for q in found.queues):
        raise click.exceptions.Exit(1)


def configured(celery: CelerySettings) -> CelerySettings:
    """``celery`` when it names a broker; :class:`ConfigError` saying how otherwise."""
    if not celery.broker_urls:
        raise ConfigError(
            "celery.broker_urls is empty: give every RabbitMQ node's URL, e.g. "
            "TRADEWIND__CELERY__BROKER_URLS='[\"amqp://user:pass@infra1:5672/tradewind\"]'"
        )
    return celery


def _print_tables(found: BrokerStatus, output: str) -> None:
    emit(
        [_queue_row(q) for q in found.queues],
        output,
        columns=["queue", "ready", "unacked", "consumers"],
    )
    emit(
        [
            {
                "node": n.name or "?",
                "endpoint": n.endpoint or "-",
                "state": "running" if n.running else "down",
                "detail": n.detail,
            }
            for n in found.nodes
        ],
        output,
        columns=["node", "endpoint", "state", "detail"],
    )
    for note in found.unreadable:
        click.echo(f"could not read: {note}")


def _queue_row(queue: QueueStatus) -> dict[str, Any]:
    if not queue.exists:
        missing = "missing: run 'tradewind broker setup'"
        return {"queue": queue.name, "ready": missing, "unacked": "", "consumers": ""}
    return {
        "queue": queue.name,
        "ready": _shown(queue.ready),
        "unacked": _shown(queue.unacked),
        "consumers": _shown(queue.consumers),
    }


def _shown(value: int | None) -> str:
    return "?" if value is None else str(value)
