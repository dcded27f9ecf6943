"""The scheduler's metrics and the recorder its loop calls.

Wiring (in the scheduler's process entry point): build one :class:`SchedulerMetrics`,
serve ``metrics.registry`` with :class:`~cluster.metrics.exposition.MetricsServer` on
``metrics.host:metrics.scheduler_port`` when ``metrics.enabled``, and call its methods
where things happen. Every method is cheap (no I/O) and never raises.
"""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from cluster.states import TaskState

#: seconds; a loop iteration is usually milliseconds, a slow metastore makes it seconds
LOOP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
#: seconds; importing a DAG file takes from milliseconds to its time limit
PARSE_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class SchedulerMetrics:
    """The metrics of one scheduler process, in a registry of their own.

    :param registry: where to define them; a fresh one when omitted (tests build many).
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self._loop = Histogram(
            "tradewind_scheduler_loop_duration_seconds",
            "Duration of one scheduling loop iteration.",
            buckets=LOOP_BUCKETS,
            registry=self.registry,
        )
        self._parse = Histogram(
            "tradewind_dag_file_parse_duration_seconds",
            "Duration of importing and serializing one DAG file.",
            ["file"],
            buckets=PARSE_BUCKETS,
            registry=self.registry,
        )
        self._by_state = Gauge(
            "tradewind_task_instances",
            "Task instances of running DAG runs, by state.",
            ["state"],
            registry=self.registry,
        )
        self._queued = Gauge(
            "tradewind_queued_tasks", "Task instances queued.", registry=self.registry
        )
        self._running = Gauge(
            "tradewind_running_tasks", "Task instances running.", registry=self.registry
        )
        self._leader = Gauge(
            "tradewind_scheduler_is_leader",
            "1 while this scheduler leads, else 0.",
            registry=self.registry,
        )
        self._leader_changes = Counter(
            "tradewind_scheduler_leader_changes",
            "Times this scheduler became leader or stepped down.",
            registry=self.registry,
        )
        self._broker_errors = Counter(
            "tradewind_scheduler_broker_errors",
            "Failed publishes or lost connections to the broker.",
            registry=self.registry,
        )

    def observe_loop(self, seconds: float) -> None:
        """One loop iteration took ``seconds``."""
        self._loop.observe(seconds)

    def observe_parse(self, path: str, seconds: float) -> None:
        """Importing the DAG file ``path`` (relative to the DAGs folder) took ``seconds``."""
        self._parse.labels(file=path).observe(seconds)

    def set_state_counts(self, counts: Mapping[str, int]) -> None:
        """Task instances per state right now; states missing from ``counts`` are 0."""
        for state in TaskState:
            self._by_state.labels(state=str(state)).set(counts.get(str(state), 0))
        self._queued.set(counts.get(str(TaskState.QUEUED), 0))
        self._running.set(counts.get(str(TaskState.RUNNING), 0))

    def leader_changed(self, leading: bool) -> None:
        """This scheduler became leader (``True``) or stopped leading (``False``)."""
        self._leader_changes.inc()
        self._leader.set(1 if leading else 0)

    def broker_error(self) -> None:
        """Publishing to or listening on the broker failed once."""
        self._broker_errors.inc()
