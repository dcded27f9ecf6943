"""``tradewind flower``: Celery Flower against the cluster's brokers (Airflow's
``airflow celery flower``), on a master, usually behind HAProxy at ``/flower``.

It refuses to start unprotected, and without a broker list, each in one line. With
``flower.auth = webserver`` it waits for the metastore's schema like the other role
commands, since the webserver's users are read from there. The broker it need not wait
for: Flower reconnects by itself and shows no worker until the broker answers.

Flower sees workers only while they have ``celery.worker_remote_control`` on (the
default); ``celery -A cluster.executors.celery_app inspect active`` asks them the same
way from a shell.
"""

from __future__ import annotations

import asyncio
import signal

import click

from cluster.cli.app import App, pass_app
from cluster.cli.scheduler_cmd import configure_logging
from cluster.executors.celery_app import broker_url, build_celery_app
from cluster.flower.guard import UserGuard
from cluster.flower.server import build_flower, check_protection, open_api_to_guard, url_prefix
from cluster.metastore.migrate import wait_for_schema


@click.command("flower")
@click.option("--address", help="Address to listen on [flower.address].")
@click.option("-p", "--port", type=click.IntRange(0, 65535), help="Port [flower.port].")
@pass_app
def flower(app: App, address: str | None, port: int | None) -> None:
    """Run Celery Flower on the cluster's brokers, behind a sign-in, until stopped."""
    settings = app.settings
    if address is not None:
        settings = settings.replace("flower", address=address)
    if port is not None:
        settings = settings.replace("flower", port=port)
    configure_logging(settings)
    check_protection(settings.flower)
    broker_url(settings)  # one line when celery.broker_urls is empty
    guard = None
    if settings.flower.auth == "webserver":
        wait_for_schema(
            app.engine,
            settings.metastore.migration_wait_timeout,
            announce=lambda line: click.echo(line, err=True),
        )
        guard = UserGuard(app.session_factory, url_prefix=settings.flower.url_prefix)
        open_api_to_guard()
    server = build_flower(settings.flower, build_celery_app(settings), guard)
    port_bound = server.start_http_server()
    prefix = url_prefix(settings.flower)
    click.echo(
        f"Tradewind Flower on http://{settings.flower.address}:{port_bound}/"
        f"{prefix + '/' if prefix else ''} (sign-in: {settings.flower.auth})",
        err=True,
    )
    loop: asyncio.AbstractEventLoop = server.io_loop.asyncio_loop
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, server.stop)
    server.start()
