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
from cluster.dagfiles.serialized import SerializedDag, SerializedTask
from cluster.execution.execute import execute_try, timeout_seconds
from cluster.execution.outcome import TryOutcome
from cluster.policy.outcome import run_state
from cluster.policy.readiness import InstanceSnapshot, decide_task_states
from cluster.policy.retries import next_try_at, should_retry
from cluster.sdk import DAG
from cluster.sdk.context import RunInfo, build_context
from cluster.sdk.params import validate_params
from cluster.sdk.timetables import timetable_from_dict
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
    """One task's latest try in an in-process run.

    :ivar message: why it failed; for ``up_for_reschedule`` the ISO date of the next poke.
    :ivar retryable: for ``failed``: whether retries may apply.
    :ivar ready_at: for ``up_for_retry`` and ``up_for_reschedule``: when it may run again.
    """

    task_id: str
    state: TaskState
    duration: float = 0.0
    message: str | None = None
    skip_downstream: list[str] = field(default_factory=list)
    try_number: int = 0
    retryable: bool = True
    ready_at: datetime | None = None
    #: its last try asked for a later poke (the next one keeps the try number)
    rescheduled: bool = False


def test_dag(
    dag: DAG,
    *,
    logical_date: datetime,
    conf: dict[str, Any] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[DagRunState, dict[str, TaskResult]]:
    """Run ``dag`` once in this process, as Airflow's ``dags test`` does: a manual run
    with validated params and ``test_mode`` off; failed tries are retried after their
    delay and rescheduled sensors poke again after theirs, until the run ends.

    :raises ParamValidationError: ``conf`` breaks the DAG's params (nothing runs).
    """
    serialized = serialize_dag(dag)
    run = _run_info(serialized, logical_date, conf)
    store: dict[tuple[str, str], Any] = {}
    results = {t: TaskResult(t, TaskState.NONE) for t in serialized.tasks}
    while True:
        outcome = run_state(serialized, {t: r.state for t, r in results.items()})
        if outcome is not None:
            return outcome, results
        snapshot = {t: InstanceSnapshot(t, r.state, r.ready_at) for t, r in results.items()}
        changes = decide_task_states(serialized, snapshot, now=datetime.now(UTC))
        for change in changes:
            results[change.task_id].state = change.target
        ready = [t for t, r in results.items() if r.state is TaskState.SCHEDULED]
        if not ready and not changes:
            _wait_for_next(results, sleep)
        for task_id in ready:
            results[task_id] = _next_try(
                dag, serialized.tasks[task_id], results[task_id], run, store
            )
            for skipped in results[task_id].skip_downstream:
                if results[skipped].state in (TaskState.NONE, TaskState.SCHEDULED):
                    results[skipped].state = TaskState.SKIPPED


def _next_try(
    dag: DAG,
    spec: SerializedTask,
    last: TaskResult,
    run: RunInfo,
    store: dict[tuple[str, str], Any],
) -> TaskResult:
    """Run a scheduled task's next try: a sensor's next poke keeps its try number, as
    in Airflow; a failed try that may be retried goes ``up_for_retry``."""
    try_number = last.try_number if last.rescheduled else last.try_number + 1
    result = run_task(dag, spec.task_id, run, store, try_number=try_number, test_mode=False)
    if result.state is TaskState.UP_FOR_RESCHEDULE and result.message:
        result.ready_at = datetime.fromisoformat(result.message)
        result.rescheduled = True
    elif result.state is TaskState.FAILED and result.retryable and should_retry(spec, try_number):
        result.state = TaskState.UP_FOR_RETRY
        result.ready_at = next_try_at(spec, try_number, datetime.now(UTC))
    return result


def _wait_for_next(results: dict[str, TaskResult], sleep: Callable[[float], None]) -> None:
    """Sleep until the soonest retry or poke; a run where nothing waits cannot progress."""
    waiting = [r.ready_at for r in results.values() if r.ready_at is not None]
    if not waiting:
        raise RuntimeError("no task is ready and none is waiting: the run cannot progress")
    sleep(max(0.0, (min(waiting) - datetime.now(UTC)).total_seconds()))


def _run_info(dag: SerializedDag, logical_date: datetime, conf: dict[str, Any] | None) -> RunInfo:
    """The manual run ``dags test`` makes: its interval as the timetable infers it and
    ``conf`` validated against the DAG's params, as ``dags trigger`` does."""
    interval = timetable_from_dict(dag.timetable).infer_manual_data_interval(run_after=logical_date)
    return RunInfo(
        dag_id=dag.dag_id,
        run_id=f"manual__{logical_date.isoformat()}",
        logical_date=logical_date,
        data_interval_start=interval.start,
        data_interval_end=interval.end,
        run_type="manual",
        conf=validate_params(dag.params, dict(conf or {})),
        start_date=datetime.now(UTC),
        triggered_externally=False,  # as Airflow's dags test: LatestOnlyOperator may skip
    )


def run_task(
    dag: DAG,
    task_id: str,
    run: RunInfo,
    store: dict[tuple[str, str], Any] | None = None,
    *,
    try_number: int = 1,
    test_mode: bool = True,
) -> TaskResult:
    """Run one try of one task in this process; returns its end (no retries).

    :param test_mode: ``tasks test`` runs in Airflow's test mode, ``dags test`` does not.
    """
    task = dag.get_task(task_id)
    ti = InProcessTaskInstance(
        dag.dag_id,
        task_id,
        run.run_id,
        store if store is not None else {},
        try_number=try_number,
        max_tries=task.retries,
    )
    context = build_context(dag=dag, task=task, ti=ti, dag_run=run, test_mode=test_mode)
    started = time.perf_counter()
    outcome: TryOutcome = execute_try(
        task, context, timeout=timeout_seconds(task), xcom_max_size=1 << 30
    )
    state = TaskState(outcome.state)
    message = outcome.reschedule_at if state is TaskState.UP_FOR_RESCHEDULE else outcome.message
    return TaskResult(
        task_id,
        state,
        time.perf_counter() - started,
        message,
        list(outcome.skip_downstream),
        try_number,
        outcome.retryable,
    )
