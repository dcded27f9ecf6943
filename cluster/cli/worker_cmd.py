"""``tradewind worker``: a Celery worker, its log server and its heartbeat, in one process.

The worker consumes its queues on Celery's threads pool; each thread hands its
message to the worker's own process pool (:func:`~cluster.execution.worker.pooled_runner`),
which runs tries without a fork, batches their metastore work and publishes a
"finished" event after each recorded try. The log server (a thread of the main
process) serves this node's logs on ``logging.log_server_port`` at the address
``core.hostname`` resolves to, the name the runner records on every try and the
webserver later connects to: ``--hostname`` sets both. (On a Debian host whose name
resolves to ``127.0.1.1`` in ``/etc/hosts``, make it resolve to the node's address.)

With ``metrics.enabled`` the worker serves Prometheus metrics on
``metrics.host:metrics.worker_port``: it switches to prometheus_client's multiprocess
mode before the pool forks, the worker times its tries (:class:`MeasuredRunner`),
and the main process serves the metrics.

SIGTERM drains: the worker stops taking messages and waits for running tries (a warm
shutdown). A second SIGTERM stops at once (a cold shutdown: running tries are
cancelled, their messages requeued, and the claim keeps them from running twice).
"""

from __future__ import annotations

import gc
import logging
import socket
import time
from collections.abc import Callable
from typing import Any

import click
from celery import Celery
from celery.apps.worker import Worker, install_worker_term_hard_handler
from celery.apps.worker import _shutdown_handler as celery_shutdown_handler
from prometheus_client import CollectorRegistry

from cluster.cli.app import App, pass_app
from cluster.cli.scheduler_cmd import configure_logging, require_fernet_key
from cluster.config import Settings, require_secret
from cluster.dagfiles.environment import prepare_user_code
from cluster.errors import ConfigError
from cluster.execution.worker import pooled_runner
from cluster.executors.celery_app import (
    WorkerRunner,
    build_celery_app,
    register_task,
    threads_pool,
)
from cluster.executors.events import EventPublisher, quiet_vendor_logs
from cluster.logserver.server import LogServer
from cluster.messages import TaskMessage
from cluster.metastore.components import settings_fingerprints
from cluster.metastore.heartbeats import ComponentHeartbeat
from cluster.metastore.migrate import wait_for_schema
from cluster.metrics.exposition import (
    MetricsServer,
    enable_multiprocess,
    exposition_registry,
    process_directory,
)
from cluster.metrics.worker import NOT_CLAIMED, WorkerMetrics
from cluster.states import TaskState

log = logging.getLogger(__name__)

KIND = "worker"


def split_queues(value: str | None, default: list[str]) -> list[str]:
    """``q1,q2`` as a list; the configured queues when not given."""
    if value is None:
        return list(default)
    queues = [part.strip() for part in value.split(",") if part.strip()]
    if not queues:
        raise ConfigError("--queues names no queue")
    return queues


def bind_address(hostname: str) -> str:
    """The address ``hostname`` resolves to: where the log server listens.

    :raises ConfigError: when it does not resolve.
    """
    try:
        return socket.gethostbyname(hostname)
    except OSError as exc:
        raise ConfigError(
            f"core.hostname '{hostname}' does not resolve to an address for the log server: "
            "give --hostname a name or address of this node"
        ) from exc


class MeasuredRunner:
    """A task runner that records each try's duration and outcome and the running count.

    It wraps the runner rather than listening on its ``on_recorded`` hook: that hook is
    told the end state but not when the try began, and is not called for a message that
    ran nothing (a duplicate delivery), which is counted here too.
    """

    def __init__(
        self,
        runner: WorkerRunner,
        metrics: WorkerMetrics,
        *,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._runner = runner
        self._metrics = metrics
        self._clock = clock

    def run(self, message: TaskMessage) -> TaskState | None:
        self._metrics.task_started()
        started = self._clock()
        outcome = "error"  # the runner raised: a bug or the metastore away
        try:
            state = self._runner.run(message)
            outcome = str(state) if state is not None else NOT_CLAIMED
            return state
        finally:
            seconds = self._clock() - started
            self._metrics.task_finished(message.dag_id, message.task_id, outcome, seconds)

    def prepare(self) -> None:
        self._runner.prepare()

    def cut(self) -> None:
        self._runner.cut()

    def stop(self) -> None:
        self._runner.stop()


def runner_factory(
    settings: Settings, concurrency: int, *, after_fork: Callable[[], None]
) -> Callable[[], WorkerRunner]:
    """What the worker builds when it starts: a pool of ``concurrency`` processes whose
    recorded tries publish events, timed when ``metrics.enabled``; each pool process
    runs ``after_fork`` first."""

    def build() -> WorkerRunner:
        publisher = EventPublisher(settings.celery.broker_urls, settings.celery.events_exchange)
        runner = pooled_runner(
            settings, size=concurrency, on_recorded=publisher.publish, after_fork=after_fork
        )
        if not settings.metrics.enabled:
            return runner
        return MeasuredRunner(runner, WorkerMetrics())

    return build


def start_metrics(settings: Settings) -> MetricsServer | None:
    """In multiprocess mode, serve every pool process's metrics; ``None`` when disabled.

    Must run before the pool forks (and before any metric exists in this process).
    """
    if not settings.metrics.enabled:
        return None
    enable_multiprocess(process_directory(settings.metrics, KIND))
    registry = exposition_registry(CollectorRegistry())
    server = MetricsServer(
        registry, host=settings.metrics.host, port=settings.metrics.worker_port
    ).start()
    return server


class TradewindWorker(Worker):
    """Celery's worker with one change: a second SIGTERM stops at once.

    Celery ignores every SIGTERM after the first (only SIGQUIT or a second Ctrl-C
    turns a warm shutdown cold); an operator or a service manager expects the second
    TERM to stop the worker.
    """

    def install_platform_tweaks(self, worker: Any) -> None:
        super().install_platform_tweaks(worker)
        celery_shutdown_handler(
            worker,
            sig="SIGTERM",
            how="Warm",
            callback=lambda w: install_worker_term_hard_handler(w, sig="SIGTERM"),
        )


def start_worker(
    app: Celery,
    *,
    hostname: str,
    queues: list[str],
    concurrency: int,
    loglevel: str,
    pool: type[Any],
) -> int:
    """Run the Celery worker until it shuts down; its exit code."""
    worker = TradewindWorker(
        app=app,
        hostname=f"tradewind@{hostname}",
        queues=queues,
        concurrency=concurrency,
        # threads only wait: the tries run in the runner's own process pool
        pool_cls=pool,
        loglevel=loglevel,
        without_mingle=True,
        without_gossip=True,
        quiet=True,
    )
    worker.start()
    return int(worker.exitcode or 0)


@click.command("worker")
@click.option("-q", "--queues", help="Comma-separated queues to consume (default: celery.queues).")
@click.option(
    "-c",
    "--concurrency",
    type=click.IntRange(min=1),
    help="Pool processes (default: celery.worker_concurrency).",
)
@click.option("--hostname", help="This node's name or address (default: core.hostname).")
@pass_app
def worker(app: App, queues: str | None, concurrency: int | None, hostname: str | None) -> None:
    """Run a Celery worker with its log server."""
    settings = app.settings
    if hostname:
        settings = settings.replace("core", hostname=hostname)
    configure_logging(settings)
    quiet_vendor_logs()
    chosen = split_queues(queues, settings.celery.queues)
    require_fernet_key(settings)
    require_secret(settings, "webserver.secret_key")  # the log server checks signatures
    prepare_user_code(settings)  # before the pool forks: its processes inherit the plugins
    wait_for_schema(app.engine, settings.metastore.migration_wait_timeout)
    server = LogServer(
        settings.logging.base_log_folder,
        key=settings.webserver.secret_key,
        host=bind_address(settings.core.hostname),
        port=settings.logging.log_server_port,
    )
    metrics = start_metrics(settings)
    celery_app = build_celery_app(settings, queues=chosen)

    def after_fork() -> None:
        """Pool processes must not keep the servers' sockets or pooled connections."""
        server.close_inherited_socket()
        if metrics is not None:
            metrics.close_inherited_socket()
        app.engine.dispose(close=False)

    size = concurrency or settings.celery.worker_concurrency
    registered = register_task(celery_app, runner_factory(settings, size, after_fork=after_fork))
    extra = {
        "queues": chosen,
        "log_server_url": f"http://{settings.core.hostname}:{server.port}",
        "concurrency": concurrency or settings.celery.worker_concurrency,
    }
    heartbeat = ComponentHeartbeat(
        app.session_factory,
        kind=KIND,
        host=settings.core.hostname,
        interval=settings.scheduler.heartbeat_interval,
        describe=lambda: ("running", extra),
        fingerprints=settings_fingerprints(settings),
    )
    server.start()
    heartbeat.start()
    log.info("worker %s: queues %s, logs at %s", settings.core.hostname, chosen, server.url)
    gc.freeze()  # the startup heap lives as long as we do: the collector skips it
    try:
        code = start_worker(
            celery_app,
            hostname=settings.core.hostname,
            queues=chosen,
            concurrency=concurrency or settings.celery.worker_concurrency,
            loglevel=settings.logging.level,
            pool=threads_pool(registered),
        )
    finally:
        heartbeat.stop()
        server.stop()
        if metrics is not None:
            metrics.stop()
    if code:
        raise click.exceptions.Exit(code)
