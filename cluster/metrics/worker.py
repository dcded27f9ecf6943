"""A worker's metrics: how long tries take, by DAG, task and outcome, and how many run.

Tries run in Celery's pool processes, so the worker switches to multiprocess mode
(:func:`~cluster.metrics.exposition.enable_multiprocess`) before the pool forks; each
pool process builds its own :class:`WorkerMetrics` and the worker's main process
serves them all on ``metrics.host:metrics.worker_port``.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Gauge, Histogram

#: seconds; tasks run from milliseconds to hours
TASK_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)
#: the outcome of a message that ran nothing (another delivery had claimed the try)
NOT_CLAIMED = "not_claimed"


class WorkerMetrics:
    """The metrics of one worker (pool) process.

    :param registry: where to define them; a fresh one when omitted.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self._duration = Histogram(
            "tradewind_task_duration_seconds",
            "Duration of one try, from its message to its recorded end state.",
            ["dag_id", "task_id", "outcome"],
            buckets=TASK_BUCKETS,
            registry=self.registry,
        )
        self._running = Gauge(
            "tradewind_worker_running_tasks",
            "Tries this worker is running.",
            registry=self.registry,
            multiprocess_mode="livesum",
        )

    def task_started(self) -> None:
        self._running.inc()

    def task_finished(self, dag_id: str, task_id: str, outcome: str, seconds: float) -> None:
        """A try ended as ``outcome`` (a task state, or :data:`NOT_CLAIMED`) after ``seconds``."""
        self._running.dec()
        self._duration.labels(dag_id=dag_id, task_id=task_id, outcome=outcome).observe(seconds)
