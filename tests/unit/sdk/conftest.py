"""Fixtures for SDK tests: loading DAG files, an in-memory runtime, and a tiny
in-process DAG run that applies Airflow's trigger rules (for the example DAGs)."""

from __future__ import annotations

import importlib.util
import pathlib
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from cluster.errors import TaskFailedNoRetry, TaskRescheduled, TaskSkipped
from cluster.sdk.baseoperator import BaseOperator
from cluster.sdk.context import RunInfo, build_context
from cluster.sdk.dag import DAG
from cluster.sdk.dagcontext import capture_dags
from cluster.sdk.dates import utcnow
from cluster.sdk.runtime import set_runtime
from cluster.sdk.taskrun import execute_task
from cluster.sdk.testing import InMemoryRuntime, InMemoryTaskInstance, InMemoryXComStore


def load_dag_file(path: pathlib.Path, module_name: str | None = None) -> list[DAG]:
    """Import a DAG file the way a loader would and return the DAGs it defined."""
    name = module_name or f"dagfile_{path.stem}_{uuid.uuid4().hex[:8]}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    with capture_dags() as dags:
        spec.loader.exec_module(importlib.util.module_from_spec(spec))
    return list(dags)


@pytest.fixture
def runtime() -> Iterator[InMemoryRuntime]:
    services = InMemoryRuntime()
    set_runtime(services)
    yield services
    set_runtime(None)


def _rule_outcome(rule: str, states: list[str]) -> str | None:
    """``"run"``, a final state, or ``None`` (wait); Airflow's trigger rules, simplified."""
    done = all(s in {"success", "failed", "skipped", "upstream_failed"} for s in states)
    ok = states.count("success")
    failed = states.count("failed") + states.count("upstream_failed")
    skipped = states.count("skipped")
    if rule == "always" or not states:
        return "run"
    if not done:
        return (
            "run" if (rule == "one_success" and ok) or (rule == "one_failed" and failed) else None
        )
    table: dict[str, Callable[[], str]] = {
        "all_success": lambda: "upstream_failed" if failed else "skipped" if skipped else "run",
        "all_failed": lambda: "skipped" if ok or skipped else "run",
        "all_done": lambda: "run",
        "all_done_min_one_success": lambda: "run" if ok else "skipped",
        "all_skipped": lambda: "run" if skipped == len(states) else "skipped",
        "one_success": lambda: "run" if ok else "upstream_failed" if failed else "skipped",
        "one_failed": lambda: "run" if failed else "skipped",
        "one_done": lambda: "run" if ok or failed else "skipped",
        "none_failed": lambda: "upstream_failed" if failed else "run",
        "none_failed_min_one_success": lambda: (
            "upstream_failed" if failed else "run" if ok else "skipped"
        ),
        "none_skipped": lambda: "skipped" if skipped else "run",
    }
    return table[rule]()


def _run_task(
    task: BaseOperator, run: RunInfo, store: InMemoryXComStore, states: dict[str, str]
) -> str:
    ti = InMemoryTaskInstance(
        task.dag_id, task.task_id, run.run_id, store=store, max_tries=task.retries
    )
    for attempt in range(1, task.retries + 2):
        ti.try_number = attempt
        for _ in range(20):  # reschedules
            context = build_context(dag=task.dag, task=task, ti=ti, dag_run=run)
            try:
                execute_task(task, context)
            except TaskRescheduled:
                ti.sensor_started_at = ti.sensor_started_at or utcnow()
                continue
            except TaskSkipped:
                return "skipped"
            except TaskFailedNoRetry:
                return "failed"
            except Exception:
                break
            for skipped in ti.skipped:
                states.setdefault(skipped, "skipped")
            return "success"
    return "failed"


def run_dag_in_memory(dag: DAG, run_id: str, conf: dict[str, Any] | None = None) -> dict[str, str]:
    """Run every task once in topological order and return the final states."""
    now = utcnow()
    run = RunInfo(dag.dag_id, run_id, now, now, now, conf=conf or {})
    store = InMemoryXComStore()
    states: dict[str, str] = {}
    for task in dag.topological_sort():
        if task.task_id in states:
            continue
        upstream = [states[t] for t in sorted(task.upstream_task_ids)]
        outcome = _rule_outcome(str(task.trigger_rule), upstream)
        assert outcome is not None, f"{task.task_id} would wait forever"
        states[task.task_id] = outcome if outcome != "run" else _run_task(task, run, store, states)
    return states


@pytest.fixture
def load_dags() -> Callable[[pathlib.Path], list[DAG]]:
    """Import a DAG file like a loader does; returns the DAGs it defined."""
    return load_dag_file


@pytest.fixture
def run_dag() -> Callable[[DAG, str], dict[str, str]]:
    """Run a DAG once in memory with Airflow's trigger rules; returns the final states."""
    return run_dag_in_memory
