"""A triggerer's metrics: the triggers it runs, their outcomes, claims and its health.

Wiring (in ``tradewind triggerer``): build one :class:`TriggererMetrics`, serve its
registry on ``metrics.host:metrics.triggerer_port`` when ``metrics.enabled``, and hand
it to the service. Every method is cheap (no I/O) and never raises. The names follow
Airflow's StatsD metrics (``triggers.running``, ``triggers.succeeded``,
``triggers.failed``, ``triggers.blocked_main_thread``, ``triggerer_heartbeat``).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

#: seconds; a pass is milliseconds, a slow metastore makes it seconds
PASS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class TriggererMetrics:
    """The metrics of one triggerer process, in a registry of their own."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self._running = Gauge(
            "tradewind_triggerer_running_triggers",
            "Triggers this triggerer runs now.",
            registry=self.registry,
        )
        self._capacity = Gauge(
            "tradewind_triggerer_capacity",
            "Triggers this triggerer may run at once (triggerer.capacity).",
            registry=self.registry,
        )
        self._outcomes = Counter(
            "tradewind_triggerer_triggers",
            "Trigger outcomes written: fired (an event) or failed.",
            ["outcome"],
            registry=self.registry,
        )
        self._claimed = Counter(
            "tradewind_triggerer_claimed_triggers",
            "Triggers claimed, from nobody or taken over from a triggerer that died.",
            ["source"],
            registry=self.registry,
        )
        self._blocked = Counter(
            "tradewind_triggerer_blocked_loop",
            "Times the event loop woke late: a trigger called blocking code.",
            registry=self.registry,
        )
        self._fenced = Counter(
            "tradewind_triggerer_fenced",
            "Times this triggerer stopped its triggers because it could not heartbeat.",
            registry=self.registry,
        )
        self._pass = Histogram(
            "tradewind_triggerer_pass_duration_seconds",
            "Duration of one pass (write outcomes, claim, start and stop triggers).",
            buckets=PASS_BUCKETS,
            registry=self.registry,
        )
        self._blocked_seen = 0

    def set_capacity(self, capacity: int) -> None:
        self._capacity.set(capacity)

    def set_running(self, count: int) -> None:
        self._running.set(count)

    def written(self, *, fired: int, failed: int) -> None:
        """Outcomes written to the metastore."""
        if fired:
            self._outcomes.labels(outcome="fired").inc(fired)
        if failed:
            self._outcomes.labels(outcome="failed").inc(failed)

    def claimed(self, *, unassigned: int, taken_over: int) -> None:
        if unassigned:
            self._claimed.labels(source="unassigned").inc(unassigned)
        if taken_over:
            self._claimed.labels(source="taken_over").inc(taken_over)

    def set_blocked(self, total: int) -> None:
        """The runner's count of late wake-ups so far (the counter follows it)."""
        if total > self._blocked_seen:
            self._blocked.inc(total - self._blocked_seen)
            self._blocked_seen = total

    def fenced(self) -> None:
        self._fenced.inc()

    def observe_pass(self, seconds: float) -> None:
        self._pass.observe(seconds)
