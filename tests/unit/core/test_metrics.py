"""Prometheus metrics: each recorder's numbers, scraped over real HTTP and parsed back.

The worker's test forks real processes in multiprocess mode, as Celery's pool does,
and scrapes the parent: every child's numbers must be in one exposition.
"""

from __future__ import annotations

import multiprocessing
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from cluster.cli.worker_cmd import MeasuredRunner
from cluster.errors import ConfigError
from cluster.messages import TaskMessage
from cluster.metrics.exposition import (
    MetricsServer,
    disable_multiprocess,
    enable_multiprocess,
    exposition_registry,
    mark_process_dead,
)
from cluster.metrics.scheduler import SchedulerMetrics
from cluster.metrics.worker import NOT_CLAIMED, WorkerMetrics
from cluster.states import TaskState

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(registry: CollectorRegistry) -> Samples:
    """Serve ``registry`` on a free loopback port, GET /metrics, parse every sample."""
    server = MetricsServer(registry, host="127.0.0.1", port=0).start()
    try:
        with urllib.request.urlopen(server.url, timeout=10) as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/plain")
            text = response.read().decode()
    finally:
        server.stop()
    return parse(text)


def parse(text: str) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def test_the_scheduler_recorder_exposes_loops_parses_states_and_events() -> None:
    metrics = SchedulerMetrics()
    metrics.observe_loop(0.02)
    metrics.observe_loop(0.3)
    metrics.observe_parse("etl.py", 0.4)
    metrics.set_state_counts({TaskState.QUEUED: 3, "running": 2, "success": 40})
    metrics.leader_changed(True)
    metrics.broker_error()
    metrics.broker_error()

    found = scrape(metrics.registry)
    assert found[("tradewind_scheduler_loop_duration_seconds_count", ())] == 2
    assert found[("tradewind_scheduler_loop_duration_seconds_sum", ())] == pytest.approx(0.32)
    assert found[("tradewind_scheduler_loop_duration_seconds_bucket", (("le", "0.025"),))] == 1
    parse_count = ("tradewind_dag_file_parse_duration_seconds_count", (("file", "etl.py"),))
    assert found[parse_count] == 1
    assert found[("tradewind_task_instances", (("state", "queued"),))] == 3
    assert found[("tradewind_task_instances", (("state", "failed"),))] == 0
    assert found[("tradewind_queued_tasks", ())] == 3
    assert found[("tradewind_running_tasks", ())] == 2
    assert found[("tradewind_scheduler_leader_changes_total", ())] == 1
    assert found[("tradewind_scheduler_is_leader", ())] == 1
    assert found[("tradewind_scheduler_broker_errors_total", ())] == 2


def test_state_counts_replace_the_previous_ones() -> None:
    metrics = SchedulerMetrics()
    metrics.set_state_counts({"queued": 5})
    metrics.set_state_counts({"running": 1})
    found = scrape(metrics.registry)
    assert found[("tradewind_queued_tasks", ())] == 0
    assert found[("tradewind_task_instances", (("state", "running"),))] == 1


def test_two_recorders_in_one_process_do_not_clash() -> None:
    first, second = SchedulerMetrics(), SchedulerMetrics()
    first.broker_error()
    assert scrape(second.registry)[("tradewind_scheduler_broker_errors_total", ())] == 0


def test_a_taken_port_is_one_clear_error() -> None:
    registry = CollectorRegistry()
    server = MetricsServer(registry, host="127.0.0.1", port=0).start()
    try:
        with pytest.raises(ConfigError, match=r"cannot serve metrics on 127\.0\.0\.1"):
            MetricsServer(registry, host="127.0.0.1", port=server.port).start()
    finally:
        server.stop()


# --- the worker: multiprocess mode ----------------------------------------------------


@pytest.fixture
def multiprocess_dir(tmp_path: Path) -> Iterator[Path]:
    directory = enable_multiprocess(tmp_path / "metrics" / "worker-1")
    yield directory
    disable_multiprocess()


def _finish_tries(count: int) -> None:
    metrics = WorkerMetrics()
    for _ in range(count):
        metrics.task_started()
        metrics.task_finished("etl", "load", "success", 0.2)


def _hold_one_try(started: object, release: object) -> None:
    metrics = WorkerMetrics()
    metrics.task_started()
    started.set()  # type: ignore[attr-defined]
    release.wait(60)  # type: ignore[attr-defined]


def test_pool_processes_report_through_the_parent(multiprocess_dir: Path) -> None:
    fork = multiprocessing.get_context("fork")
    finisher = fork.Process(target=_finish_tries, args=(3,))
    finisher.start()
    finisher.join(60)
    started, release = fork.Event(), fork.Event()
    holder = fork.Process(target=_hold_one_try, args=(started, release))
    holder.start()
    try:
        assert started.wait(60), "the holding child did not start its try"
        found = scrape(exposition_registry(CollectorRegistry()))
    finally:
        release.set()
        holder.join(60)
    key = (("dag_id", "etl"), ("outcome", "success"), ("task_id", "load"))
    assert found[("tradewind_task_duration_seconds_count", key)] == 3
    assert found[("tradewind_task_duration_seconds_sum", key)] == pytest.approx(0.6)
    assert found[("tradewind_worker_running_tasks", ())] == 1
    assert holder.pid is not None
    mark_process_dead(holder.pid)
    after = scrape(exposition_registry(CollectorRegistry()))
    assert after.get(("tradewind_worker_running_tasks", ()), 0) == 0


class _Runner:
    """A task runner that returns (or raises) what it is given."""

    def __init__(self, result: TaskState | Exception | None) -> None:
        self.result = result
        self.prepared = 0

    def run(self, message: TaskMessage) -> TaskState | None:
        if isinstance(self.result, Exception):
            raise self.result
        return self.result

    def prepare(self) -> None:
        self.prepared += 1


def test_the_measured_runner_times_each_try_by_outcome() -> None:
    metrics = WorkerMetrics()
    ticks = iter([10.0, 12.5, 20.0, 20.1, 30.0, 31.0])
    message = TaskMessage("etl", "manual__1", "load", -1, 1, "f" * 8)
    for result in (TaskState.SUCCESS, None, RuntimeError("metastore away")):
        runner = MeasuredRunner(_Runner(result), metrics, clock=lambda: next(ticks))
        if isinstance(result, Exception):
            with pytest.raises(RuntimeError):
                runner.run(message)
        else:
            assert runner.run(message) == result
    found = scrape(metrics.registry)

    def total(outcome: str) -> float:
        key = (("dag_id", "etl"), ("outcome", outcome), ("task_id", "load"))
        return found[("tradewind_task_duration_seconds_sum", key)]

    assert total("success") == pytest.approx(2.5)
    assert total(NOT_CLAIMED) == pytest.approx(0.1)
    assert total("error") == pytest.approx(1.0)
    assert found[("tradewind_worker_running_tasks", ())] == 0
