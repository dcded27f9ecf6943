"""``tradewind scheduler``: the scheduler role command, and the wiring it shares with standalone."""

from __future__ import annotations

import gc
import logging
import signal
from types import FrameType
from typing import Any, Protocol

import click

from cluster.cli.app import App, pass_app
from cluster.config import Settings, require_secret
from cluster.dagfiles.environment import prepare_user_code
from cluster.errors import ConfigError
from cluster.execution.worker import local_worker
from cluster.executors.base import Executor
from cluster.executors.celery import build_celery_executor
from cluster.executors.local import LocalExecutor
from cluster.metastore.engine import bound_idle_transactions
from cluster.metastore.migrate import wait_for_schema
from cluster.metastore.secrets import make_fernet
from cluster.metrics.exposition import MetricsServer
from cluster.scheduler.service import SchedulerService

log = logging.getLogger(__name__)


def build_executor(settings: Settings, on_finished: Any) -> Executor:
    """The executor named by ``core.executor``.

    With ``celery``, ``on_finished`` is called from the thread that consumes the
    workers' finished events (the loop polls while the broker is unreachable).
    """
    if settings.core.executor == "local":
        return LocalExecutor(
            size=settings.core.parallelism,
            worker_factory=local_worker(settings),
            on_finished=on_finished,
        )
    if settings.core.executor == "celery":
        return build_celery_executor(settings, on_finished)
    raise ConfigError(f"core.executor = {settings.core.executor!r} is not available in this build")


def require_fernet_key(settings: Settings) -> None:
    """Refuse to start, in one line saying how to set it, without a usable Fernet key.

    Processes that run tasks (the scheduler's local executor, workers' pools) decrypt
    variables and connections with it; without this check each try failed with only
    "exited before reporting" in its log, and the pool's processes died in a loop.
    """
    make_fernet(require_secret(settings, "core.fernet_key"))


def build_scheduler(app: App, settings: Settings) -> SchedulerService:
    """Check the Fernet key, load the plugins, wait for the metastore and its schema, and
    build the scheduler service."""
    require_fernet_key(settings)
    prepare_user_code(settings)  # plugin timetables: the scheduler computes every schedule
    wait_for_schema(app.engine, settings.metastore.migration_wait_timeout)
    # local workers are forked: they must not inherit pooled connections
    app.engine.dispose()
    if settings.ha.election == "zookeeper":
        bound_idle_transactions(
            app.engine, settings.ha.session_timeout, pgbouncer=settings.metastore.pgbouncer
        )
    return SchedulerService(
        settings,
        sessions=app.session_factory,
        executor_factory=lambda wake: build_executor(settings, wake),
    )


class RoleService(Protocol):
    """A role's long-running service: the scheduler's or the triggerer's."""

    def run(self) -> None: ...

    def stop(self) -> None: ...


def stop_on_signals(service: RoleService) -> None:
    """SIGTERM or Ctrl-C stops the service cleanly (the scheduler drains running tasks)."""

    def handler(signum: int, frame: FrameType | None) -> None:
        log.info("received %s: stopping", signal.Signals(signum).name)
        service.stop()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def configure_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.logging.level, format="[%(asctime)s] {%(name)s} %(levelname)s - %(message)s"
    )


@click.command("scheduler")
@pass_app
def scheduler(app: App) -> None:
    """Run the scheduler (with DAG processing and the configured executor)."""
    configure_logging(app.settings)
    service = build_scheduler(app, app.settings)
    registry = service.observer.metrics.registry
    run_role(service, app.settings, registry, app.settings.metrics.scheduler_port)


def run_role(service: RoleService, settings: Settings, registry: Any, port: int) -> None:
    """Run ``service`` until a signal stops it, serving ``registry`` on
    ``metrics.host:port`` meanwhile when metrics are enabled."""
    stop_on_signals(service)
    server = None
    if settings.metrics.enabled:
        server = MetricsServer(registry, host=settings.metrics.host, port=port).start()
    gc.freeze()  # the startup heap lives as long as we do: the collector skips it
    try:
        service.run()
    finally:
        if server is not None:
            server.stop()
