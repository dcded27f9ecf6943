"""Running a whole DAG, or one task, in this process: ``dags test`` and ``tasks test``.

Nothing is written to the metastore: XComs live in memory, and the scheduler's own
policy decides the order, trigger rules and skips, so a test run ends in the states
a scheduled run would. Variables and connections come from the metastore when one is
reachable (the caller sets the runtime), as in Airflow.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cluster.dagfiles.serialize import serialize_dag
from cluster.execution.execute import execute_try, timeout_seconds
from cluster.execution.outcome import TryOutcome
from cluster.policy.outcome import run_state
from cluster.policy.readiness import InstanceSnapshot, decide_task_states
from cluster.sdk import DAG
from cluster.sdk.context import RunInfo, build_context
from cluster.states import DagRunState, TaskState


@dataclass
class InProcessTaskInstance:
    """A task-instance handle over a dict shared by every task of the test run."""

    dag_id: str
    task_id: str
    run_id: str
    store: dict[tuple[str, str], Any]
    map_index: int = -1
    try_number: int = 1
    max_tries: int = 0
    hostname: str = field(default_factory=socket.gethostname)
    start_date: datetime | None = field(default_factory=lambda: datetime.now(UTC))
    sensor_started_at: datetime | None = None
    _pushed: dict[str, Any] = field(default_factory=dict)
    _skipped: list[str] = field(default_factory=list)

    def xcom_push(self, key: str, value: Any) -> None:
        self._pushed[key] = value
        self.store[(self.task_id, key)] = value

    def xcom_pull(
        self,
        task_ids: str | Iterable[str] | None = None,
        key: str = "return_value",
        dag_id: str | None = None,
        map_indexes: int | Iterable[int] | None = None,
        default: Any = None,
    ) -> Any:
        if task_ids is None:
            task_ids = self.task_id
        if isinstance(task_ids, str):
            return self.store.get((task_ids, key), default)
        return [self.store[(t, key)] for t in task_ids if (t, key) in self.store]

    def skip_downstream(self, task_ids: Iterable[str]) -> None:
        self._skipped.extend(task_ids)

    def pushed_xcoms(self) -> list[tuple[str, Any]]:
        return list(self._pushed.items())

    def skipped_downstream(self) -> list[str]:
        return list(self._skipped)


@dataclass
class TaskResult:
    task_id: str
    state: TaskState
    duration: float = 0.0
    message: str | None = None
    skip_downstream: list[str] = field(default_factory=list)


def test_dag(
    dag: DAG,
    *,
    logical_date: datetime,
    conf: dict[str, Any] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[DagRunState, dict[str, TaskResult]]:
    """Run every task of ``dag`` once, in dependency order, as one manual run."""
    serialized = serialize_dag(dag)
    run = _run_info(dag, logical_date, conf)
    store: dict[tuple[str, str], Any] = {}
    results = {t: TaskResult(t, TaskState.NONE) for t in serialized.tasks}
    reschedule_at: dict[str, datetime] = {}
    while True:
        snapshot = {
            t: InstanceSnapshot(t, r.state, reschedule_at.get(t)) for t, r in results.items()
        }
        outcome = run_state(serialized, {t: r.state for t, r in results.items()})
        if outcome is not None:
            return outcome, results
        now = datetime.now(UTC)
        changes = decide_task_states(serialized, snapshot, now=now)
        for change in changes:
            results[change.task_id].state = change.target
        ready = [t for t, r in results.items() if r.state is TaskState.SCHEDULED]
        if not ready:
            _wait_for_reschedule(reschedule_at, sleep)
            continue
        for task_id in ready:
            result = run_task(dag, task_id, run, store)
            results[task_id] = result
            for skipped in result.skip_downstream:
                if results[skipped].state in (TaskState.NONE, TaskState.SCHEDULED):
                    results[skipped].state = TaskState.SKIPPED
            if result.state is TaskState.UP_FOR_RESCHEDULE and result.message:
                reschedule_at[task_id] = datetime.fromisoformat(result.message)


def _wait_for_reschedule(
    reschedule_at: dict[str, datetime], sleep: Callable[[float], None]
) -> None:
    if not reschedule_at:
        raise RuntimeError("no task is ready and none is waiting: the run cannot progress")
    soonest = min(reschedule_at.values())
    sleep(max(0.0, (soonest - datetime.now(UTC)).total_seconds()))


def _run_info(dag: DAG, logical_date: datetime, conf: dict[str, Any] | None) -> RunInfo:
    return RunInfo(
        dag_id=dag.dag_id,
        run_id=f"manual__{logical_date.isoformat()}",
        logical_date=logical_date,
        data_interval_start=logical_date,
        data_interval_end=logical_date,
        run_type="manual",
        conf=dict(conf or {}),
        start_date=datetime.now(UTC),
    )


def run_task(
    dag: DAG, task_id: str, run: RunInfo, store: dict[tuple[str, str], Any] | None = None
) -> TaskResult:
    """Run one task once in this process; returns its end state (no retries)."""
    task = dag.get_task(task_id)
    ti = InProcessTaskInstance(dag.dag_id, task_id, run.run_id, store if store is not None else {})
    context = build_context(dag=dag, task=task, ti=ti, dag_run=run, test_mode=True)
    started = time.perf_counter()
    outcome: TryOutcome = execute_try(
        task, context, timeout=timeout_seconds(task), xcom_max_size=1 << 30
    )
    state = TaskState(outcome.state)
    message = outcome.reschedule_at if state is TaskState.UP_FOR_RESCHEDULE else outcome.message
    return TaskResult(
        task_id, state, time.perf_counter() - started, message, list(outcome.skip_downstream)
    )
