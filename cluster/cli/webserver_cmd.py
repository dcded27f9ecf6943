"""``tradewind webserver``: the web UI and REST API under gunicorn, in this process.

Gunicorn's master forks ``-w`` workers; each builds its own app (and so its own
metastore engine: connections are never shared across a fork) from the settings the
command loaded once, and runs a heartbeat thread that keeps its ``component`` row
(kind ``webserver``) fresh. With ``metrics.enabled`` the master switches to
prometheus_client's multiprocess mode before forking, so ``/metrics`` on any worker
reports every worker; without it each worker reports its own requests.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click
from flask import Flask
from gunicorn.app.base import BaseApplication

from cluster.cli.app import App, pass_app
from cluster.config import Settings, require_secret
from cluster.errors import UsageError
from cluster.metastore.components import settings_fingerprints
from cluster.metastore.heartbeats import WEBSERVER_BEAT_SECONDS, ComponentHeartbeat
from cluster.metastore.migrate import wait_for_schema
from cluster.metrics.exposition import enable_multiprocess, mark_process_dead, process_directory
from cluster.web import create_app
from cluster.web.context import EXTENSION, WebContext

#: seconds a request may take before gunicorn restarts its worker
WORKER_TIMEOUT = 120
#: set when this gunicorn knows them: from 25.1 gunicorn opens a control socket at one
#: fixed path per user, which several webservers on one machine would fight over
OPTIONAL_SETTINGS = {"control_socket_disable": True}


class WebServer(BaseApplication):
    """Gunicorn configured in code: no config file, no command-line parsing of its own."""

    def __init__(self, settings: Settings, options: dict[str, Any]) -> None:
        self.settings = settings
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)
        for key, value in OPTIONAL_SETTINGS.items():
            if key in self.cfg.settings:
                self.cfg.set(key, value)

    def load(self) -> Flask:
        return create_app(self.settings)


def parse_bind(bind: str) -> str:
    """``HOST:PORT`` as gunicorn takes it; :class:`UsageError` for anything else."""
    host, sep, port = bind.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"--bind {bind!r}: expected HOST:PORT, e.g. 0.0.0.0:8080")
    return bind


def start_heartbeat(worker: Any) -> None:
    """Gunicorn ``post_worker_init`` hook: one heartbeat thread per worker."""
    context: WebContext = worker.wsgi.extensions[EXTENSION]
    heartbeat = ComponentHeartbeat(
        context.session_factory,
        kind="webserver",
        host=context.settings.core.hostname,
        interval=WEBSERVER_BEAT_SECONDS,
        fingerprints=settings_fingerprints(context.settings),
    )
    heartbeat.start()
    worker.tradewind_heartbeat = heartbeat


def stop_heartbeat(worker: Any) -> None:
    """Gunicorn ``worker_exit`` hook: record the worker as stopped."""
    heartbeat: ComponentHeartbeat | None = getattr(worker, "tradewind_heartbeat", None)
    if heartbeat is not None:
        heartbeat.stop()


def gunicorn_options(settings: Settings, workers: int, bind: str) -> dict[str, Any]:
    hooks: dict[str, Callable[..., None]] = {
        "post_worker_init": start_heartbeat,
        "worker_exit": lambda _server, worker: stop_heartbeat(worker),
        "child_exit": lambda _server, worker: mark_process_dead(worker.pid),
    }
    return {
        "bind": bind,
        "workers": workers,
        "worker_class": "sync",
        "timeout": WORKER_TIMEOUT,
        "accesslog": "-",
        "errorlog": "-",
        "loglevel": settings.logging.level.lower(),
        "proc_name": "tradewind-webserver",
        **hooks,
    }


@click.command("webserver")
@click.option(
    "-w", "--workers", type=click.IntRange(min=1), help="Worker processes [webserver.workers]."
)
@click.option("-b", "--bind", help="HOST:PORT to listen on [webserver.host:webserver.port].")
@pass_app
def webserver(app: App, workers: int | None, bind: str | None) -> None:
    """Run the web UI and the REST API (gunicorn) until stopped."""
    settings = app.settings
    require_secret(settings, "webserver.secret_key")  # one line here, not in every worker
    address = parse_bind(bind or f"{settings.webserver.host}:{settings.webserver.port}")
    count = workers or settings.webserver.workers
    wait_for_schema(
        app.engine,
        settings.metastore.migration_wait_timeout,
        announce=lambda line: click.echo(line, err=True),
        unreachable_ok=True,  # an unreachable metastore is /health's 503, not a reason to wait
    )
    app.engine.dispose()  # gunicorn's workers build engines of their own after the fork
    click.echo(f"Tradewind webserver on http://{address} with {count} worker(s).")
    if settings.metrics.enabled:
        enable_multiprocess(process_directory(settings.metrics, "webserver"))
    WebServer(settings, gunicorn_options(settings, count, address)).run()
