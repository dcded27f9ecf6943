"""The Celery application, built from settings when a process starts (never at import).

The scheduler uses it only to publish; a ``tradewind worker`` also registers the one
task, :data:`TASK_NAME`, and consumes on Celery's threads pool (:func:`threads_pool`):
each thread hands its message to the worker's runner, built once when the worker
starts (a :class:`~cluster.executors.celery_pool.PooledRunner`: a local process pool
that runs tries without a fork and batches their metastore work), and waits for the
try's end.

Delivery guarantees come from the broker and the runner's claim together: messages
sit in durable quorum queues (replicated on every RabbitMQ node), a dispatch counts
as sent only once the broker confirmed it (the scheduler waits for the confirms of a
batch at once, see :mod:`cluster.executors.celery_publisher`), a worker acknowledges
a message only after the try ended (late acks, one prefetched message per thread)
and a message whose worker died is requeued (its pool processes die with it, so the
try becomes a zombie that the scheduler retries). A message delivered twice runs
nothing the second time: the claim (a compare-and-set of ``queued → running`` for
that try number) decides.

A metastore that cannot be reached (even after the engine's retries) makes the runner
raise :class:`~cluster.errors.MetastoreError`; the message is then given back to the
broker (rejected with requeue) after a pause that grows while the outage lasts, never
acknowledged as done: acknowledging it would lose the try until the scheduler's queued
timeout re-sends it. Quorum queues count redeliveries against the ``delivery-limit`` of
``configs/rabbitmq/definitions.json``; the pause keeps a long outage within it.

Priorities: RabbitMQ 3.10's quorum queues ignore message priorities (they honour
two levels from 4.0 on), so no priority is set; the scheduler already queues the
instances of one iteration in priority order and the queues are FIFO.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from celery import Celery
from celery.concurrency.thread import ApplyResult
from celery.concurrency.thread import TaskPool as ThreadsPool
from celery.exceptions import Reject
from celery.signals import worker_init, worker_shutdown, worker_shutting_down
from celery.worker.consumer import Consumer
from celery.worker.request import Request
from kombu import Exchange, Queue

from cluster.config import Settings, load_settings
from cluster.errors import ConfigError, MetastoreError
from cluster.messages import TaskMessage
from cluster.states import TaskState

log = logging.getLogger(__name__)

#: the one Celery task of Tradewind
TASK_NAME = "tradewind.run_task"
#: seconds between AMQP heartbeats: a dead broker node is noticed within about two
BROKER_HEARTBEAT = 10.0
#: first and longest pause before a message the metastore kept from running goes back
REQUEUE_PAUSE_START = 1.0
REQUEUE_PAUSE_MAX = 15.0


class TaskConsumer(Consumer):
    """Celery's consumer without native delayed delivery.

    Celery sets up delayed-delivery exchanges and queues on every broker node whenever
    it sees a quorum queue; Tradewind never publishes a countdown or an ETA (the
    scheduler decides when a task runs), so that would only slow every worker start.
    """

    class Blueprint(Consumer.Blueprint):
        default_steps = [
            step
            for step in Consumer.Blueprint.default_steps
            if not step.endswith(":DelayedDelivery")
        ]


def quorum_queue(name: str) -> Queue:
    """A durable quorum queue of that name, bound to a direct exchange of the same name."""
    return Queue(
        name,
        Exchange(name, type="direct", durable=True),
        routing_key=name,
        durable=True,
        queue_arguments={"x-queue-type": "quorum"},
    )


def broker_url(settings: Settings) -> str:
    """Every node's URL joined with ``;``: kombu fails over from one to the next.

    :raises ConfigError: when ``celery.broker_urls`` is empty.
    """
    urls = settings.celery.broker_urls
    if not urls:
        raise ConfigError(
            "celery.broker_urls is empty: give every RabbitMQ node's URL, e.g. "
            "TRADEWIND__CELERY__BROKER_URLS='[\"amqp://user:pass@infra1:5672/tradewind\"]'"
        )
    return ";".join(urls)


def queue_names(settings: Settings, extra: Iterable[str] = ()) -> list[str]:
    """``celery.default_queue``, ``celery.queues`` and ``extra``, each once, in order."""
    names = [settings.celery.default_queue, *settings.celery.queues, *extra]
    return list(dict.fromkeys(name for name in names if name))


def build_celery_app(settings: Settings, *, queues: Iterable[str] = ()) -> Celery:
    """A Celery app on every broker node, with a quorum queue per known queue name.

    :param queues: queues besides ``celery.queues`` (a worker's ``-q``).
    """
    app = Celery("tradewind", set_as_current=False, fixups=[])
    app.conf.update(celery_conf(settings, queues))
    return app


def celery_conf(settings: Settings, queues: Iterable[str] = ()) -> dict[str, Any]:
    """The configuration of Tradewind's Celery apps (see :func:`build_celery_app`)."""
    default = settings.celery.default_queue
    return dict(
        broker_url=broker_url(settings),
        broker_failover_strategy="round-robin",
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        broker_heartbeat=BROKER_HEARTBEAT,
        broker_transport_options={"confirm_publish": True},
        task_queues=[quorum_queue(name) for name in queue_names(settings, queues)],
        task_default_queue=default,
        task_default_exchange=default,
        task_default_routing_key=default,
        task_default_queue_type="quorum",
        task_create_missing_queue_type="quorum",
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        event_serializer="json",
        worker_prefetch_multiplier=1,
        worker_consumer=f"{__name__}:TaskConsumer",
        worker_detect_quorum_queues=True,
        # a lost broker connection requeues the message; the running try goes on and
        # the redelivered copy finds it claimed, so it is not cancelled
        worker_cancel_long_running_tasks_on_connection_loss=False,
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        # rate limits cost every message and nothing uses them (the scheduler's pools
        # and limits decide)
        worker_disable_rate_limits=True,
        **monitoring_conf(settings),
    )


def settings_app(load: Callable[[], Settings]) -> Celery:
    """A Celery app that builds its configuration from ``load()`` when first used.

    For Celery's own command line (:data:`app`): ``celery -A cluster.executors.celery_app
    inspect active`` finds this module's ``app`` and reads ``$TRADEWIND_HOME`` and the
    environment only when the command first needs the configuration (Celery's
    ``add_defaults`` promise), never at import.
    """
    lazy = Celery("tradewind", set_as_current=False, fixups=[])
    lazy.add_defaults(lambda: celery_conf(load()))
    return lazy


#: the cluster's Celery app for ``celery -A cluster.executors.celery_app inspect|control|
#: events|flower``; unconfigured until such a command uses it. Tradewind's own processes
#: never touch it: they build theirs from the settings they loaded.
app = settings_app(load_settings)


def monitoring_conf(settings: Settings) -> dict[str, bool]:
    """Celery's remote control, on with ``celery.worker_remote_control``; task events off.

    Remote control (a pidbox queue per worker) answers ``celery inspect`` and Flower's
    worker pages, and costs nothing measurable while nobody asks. Task events
    (``task-received``, ``task-started``, ``task-succeeded``… on the ``celeryev``
    exchange) feed Flower's task list but cost the worker's main process 1 to 2 ms of
    CPU per try (``bench/remote_control.py``: 4.8 → 6.6 ms), so a worker starts
    without them and Flower turns them on through remote control while it runs (its
    ``enable_events`` broadcast, every 5 s), as Celery intends; they then stay on until
    the worker restarts (or ``celery -A cluster.executors.celery_app control
    disable_events``).
    With the setting off, neither ``celery inspect`` nor Flower sees the workers.

    The pidbox queues are not exclusive (they still delete themselves, unused for 10 s):
    an exclusive queue belongs to its connection, and when a broker node stops, a worker
    that reconnects to another node before the old connection is gone found its own
    queue locked and died (``RESOURCE_LOCKED``, seen in the broker-node-loss test).

    ``task-sent`` events stay off: the scheduler would publish and confirm a second
    message per dispatch, and Flower lists a task from ``task-received`` on anyway.
    """
    return {
        "worker_enable_remote_control": settings.celery.worker_remote_control,
        "control_queue_exclusive": False,
        "worker_send_task_events": False,
        "task_send_sent_event": False,
    }


class WorkerRunner(Protocol):
    """A task runner that a Celery worker starts and stops with itself."""

    def run(self, message: TaskMessage) -> TaskState | None:
        """Run one try to its end; ``None`` when it ran nothing (claim lost)."""

    def prepare(self) -> None:
        """Get ready before the first message (start the pool from the main thread)."""

    def cut(self) -> None:
        """A cold shutdown: give running messages back and stop (called in a signal handler)."""

    def stop(self) -> None:
        """A warm shutdown: the running tries have ended; stop."""


#: builds the worker's task runner, once, in the worker's main thread
RunnerFactory = Callable[[], WorkerRunner]


class PoolProcessRunner:
    """The worker's task runner, built when the worker starts, shared by Celery's threads.

    The runner forks the processes that run the tries: that happens in
    ``worker_init``, on the worker's main thread, before Celery installs its signal
    handlers (see :func:`cluster.execution.worker.pooled_runner`).
    """

    def __init__(
        self, factory: RunnerFactory, *, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self._factory = factory
        self._sleep = sleep
        self._runner: WorkerRunner | None = None
        self._lock = threading.Lock()
        #: messages in a row the metastore kept from running
        self.outage_streak = 0

    def init_process(self, **_: Any) -> WorkerRunner:
        """Build and prepare the runner once (later calls return it)."""
        with self._lock:
            if self._runner is None:
                runner = self._factory()
                runner.prepare()
                self._runner = runner
            return self._runner

    def shutting_down(self, how: str = "Warm", **_: Any) -> None:
        """Celery's ``worker_shutting_down``, in a signal handler: a cold one cuts the tries."""
        if how == "Cold":
            self.cut()

    def cut(self) -> None:
        """Release the running messages to the broker and stop the runner (idempotent)."""
        runner = self._runner
        if runner is not None:
            runner.cut()

    def shutdown_process(self, **_: Any) -> None:
        """Celery's ``worker_shutdown``: the running tries have ended (a warm shutdown)."""
        runner, self._runner = self._runner, None
        if runner is not None:
            runner.stop()

    def run(self, payload: dict[str, Any]) -> str | None:
        """Run one message; the name of the recorded state, ``None`` when it ran nothing.

        :raises Reject: (requeue) when the metastore cannot be reached: the message goes
            back to the broker, to be claimed once the metastore answers again.
        """
        runner = self._runner or self.init_process()
        message = TaskMessage.from_dict(payload)
        try:
            state = runner.run(message)
        except MetastoreError as exc:
            pause = min(REQUEUE_PAUSE_MAX, REQUEUE_PAUSE_START * 2**self.outage_streak)
            self.outage_streak += 1
            log.warning(
                "metastore unreachable; %s goes back to the broker in %g s: %s", message, pause, exc
            )
            self._sleep(pause)
            raise Reject(str(exc), requeue=True) from exc
        self.outage_streak = 0
        return str(state) if state is not None else None


class TryRequest(Request):
    """A running message of :data:`TASK_NAME`, which remote control may not terminate.

    With remote control on, ``celery control revoke --terminate`` and Flower's
    "terminate" reach the worker. Celery would terminate the request's job, which on
    this worker's pool means a cold cut of every running try (:func:`threads_pool`) and
    a pool that runs nothing more; one try cannot be ended alone. So the request
    refuses with a warning and its try goes on; a try is ended in Tradewind (mark it
    failed). Shutdowns cancel requests, which this does not change.
    """

    def terminate(self, pool: Any, signal: int | str | None = None) -> None:
        log.warning(
            "%s: a remote 'revoke --terminate' was ignored: a Tradewind worker cannot end "
            "one running try; mark the task instance failed in Tradewind instead",
            self.id,
        )


class _CutResult(ApplyResult):
    """A threads-pool job that Celery may "terminate": its runner was cut already."""

    def terminate(self, signal: int | None = None) -> None:
        """Nothing left to do (see :func:`threads_pool`)."""


def threads_pool(runner: PoolProcessRunner) -> type[ThreadsPool]:
    """Celery's threads pool, whose running jobs a cold shutdown can end.

    A cold shutdown cancels each running request by terminating its job; Celery's own
    threads pool cannot (its threads would block the shutdown until every try ends).
    Here terminating a job cuts ``runner``: every waiting thread returns at once and
    its message goes back to the broker (see ``PooledRunner.cut``).
    """

    class CuttingThreadsPool(ThreadsPool):
        def terminate_job(self, pid: int, signal: int | None = None) -> None:
            runner.cut()

        def on_apply(self, *args: Any, **kwargs: Any) -> _CutResult:
            return _CutResult(super().on_apply(*args, **kwargs).f)

    return CuttingThreadsPool


def register_task(app: Celery, factory: RunnerFactory) -> PoolProcessRunner:
    """Register :data:`TASK_NAME` on ``app``, running each message through ``factory()``'s runner.

    For the worker process only (with Celery's threads pool); the scheduler publishes
    by name.
    """
    runner = PoolProcessRunner(factory)
    worker_init.connect(runner.init_process, weak=False, dispatch_uid=TASK_NAME)
    worker_shutting_down.connect(runner.shutting_down, weak=False, dispatch_uid=TASK_NAME)
    worker_shutdown.connect(runner.shutdown_process, weak=False, dispatch_uid=TASK_NAME)

    @app.task(
        name=TASK_NAME,
        acks_late=True,
        reject_on_worker_lost=True,
        ignore_result=True,
        Request=TryRequest,
    )
    def run_task(payload: dict[str, Any]) -> str | None:
        return runner.run(payload)

    return runner
