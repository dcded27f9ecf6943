"""Running a whole DAG, or one task, in this process: ``dags test`` and ``tasks test``.

Nothing is written to the metastore: XComs live in memory, and the scheduler's own
policy decides the order, trigger rules and skips, so a test run ends in the states
a scheduled run would. Variables and connections come from the metastore when one is
reachable (the caller sets the runtime), as in Airflow.
"""

from __future__ import annotations

import copy
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
from cluster.policy.changes import InstanceKey, key_of
from cluster.policy.mapping import initial_map_indexes, producers
from cluster.policy.outcome import run_state
from cluster.policy.readiness import InstanceSnapshot, decide_run
from cluster.policy.retries import next_try_at, should_retry
from cluster.sdk import DAG
from cluster.sdk.context import RunInfo, build_context
from cluster.sdk.params import validate_params
from cluster.sdk.timetables import timetable_from_dict
from cluster.states import FINISHED, DagRunState, TaskState

#: XComs of a test run: ``(task_id, map_index, key) → value``
Store = dict[tuple[str, int, str], Any]


@dataclass
class InProcessTaskInstance:
    """A task-instance handle over a dict shared by every task of the test run."""

    dag_id: str
    task_id: str
    run_id: str
    store: Store
    map_index: int = -1
    try_number: int = 1
    max_tries: int = 0
    hostname: str = field(default_factory=socket.gethostname)
    start_date: datetime | None = field(default_factory=lambda: datetime.now(UTC))
    sensor_started_at: datetime | None = None
    upstream_map_indexes: dict[str, int | range] = field(default_factory=dict)
    _pushed: dict[str, Any] = field(default_factory=dict)
    _skipped: list[str] = field(default_factory=list)

    def xcom_push(self, key: str, value: Any) -> None:
        self._pushed[key] = value
        self.store[(self.task_id, self.map_index, key)] = value

    def xcom_pull(
        self,
        task_ids: str | Iterable[str] | None = None,
        key: str = "return_value",
        dag_id: str | None = None,
        map_indexes: int | Iterable[int] | None = None,
        default: Any = None,
    ) -> Any:
        """As the metastore handle: a mapped task's values come as a list, in order."""
        if task_ids is None:
            task_ids = self.task_id
            map_indexes = self.map_index if map_indexes is None else map_indexes
        if isinstance(task_ids, str):
            if isinstance(map_indexes, int):
                return self.store.get((task_ids, map_indexes, key), default)
            if map_indexes is None and (task_ids, -1, key) in self.store:
                return self.store[(task_ids, -1, key)]
            values = self._values(task_ids, key, map_indexes)
            return values if values or map_indexes is not None else default
        return [v for t in task_ids for v in self._values(t, key, None, plain=True)]

    def _values(
        self, task_id: str, key: str, map_indexes: Iterable[int] | None, *, plain: bool = False
    ) -> list[Any]:
        wanted = None if map_indexes is None else set(map_indexes)
        found = sorted(
            (m, v)
            for (t, m, k), v in self.store.items()
            if t == task_id and k == key and (m >= 0 or plain) and (wanted is None or m in wanted)
        )
        return [v for _, v in found]

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
    map_index: int = -1
    #: a producer of a mapping: the length it pushed; a mapped instance: 1 if it pushed
    map_length: int | None = None
    rendered_map_index: str | None = None


def test_dag(
    dag: DAG,
    *,
    logical_date: datetime,
    conf: dict[str, Any] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[DagRunState, dict[InstanceKey, TaskResult]]:
    """Run ``dag`` once in this process, as Airflow's ``dags test`` does: a manual run
    with validated params and ``test_mode`` off; failed tries are retried after their
    delay and rescheduled sensors poke again after theirs, until the run ends. Mapped
    tasks expand as under the scheduler: results are keyed by task id, or by
    ``(task_id, map_index)`` for mapped instances.

    :raises ParamValidationError: ``conf`` breaks the DAG's params (nothing runs).
    """
    serialized = serialize_dag(dag)
    run = manual_run_info(serialized, logical_date, conf)
    store: Store = {}
    results: dict[InstanceKey, TaskResult] = {}
    for task_id in serialized.tasks:
        for i in initial_map_indexes(serialized, task_id):
            results[key_of(task_id, i)] = TaskResult(task_id, TaskState.NONE, map_index=i)
    while True:
        outcome = run_state(serialized, {k: r.state for k, r in results.items()})
        if outcome is not None:
            return outcome, results
        changed = _decide(serialized, results)
        ready = [k for k, r in results.items() if r.state is TaskState.SCHEDULED]
        if not ready and not changed:
            _wait_for_next(results, sleep)
        for key in ready:
            last = results[key]
            results[key] = _next_try(dag, serialized.tasks[last.task_id], last, run, store)
            for skipped in results[key].skip_downstream:
                skip_key = key_of(skipped, last.map_index)
                if skip_key in results and results[skip_key].state in (
                    TaskState.NONE,
                    TaskState.SCHEDULED,
                ):
                    results[skip_key].state = TaskState.SKIPPED


def _decide(dag: SerializedDag, results: dict[InstanceKey, TaskResult]) -> bool:
    """One scheduling decision over the test run, expansions included; whether any."""
    snapshot = {
        k: InstanceSnapshot(r.task_id, r.state, r.ready_at, r.map_index) for k, r in results.items()
    }
    decision = decide_run(dag, snapshot, now=datetime.now(UTC), lengths=_lengths(dag, results))
    for expansion in decision.expansions:
        del results[expansion.task_id]
        for i in range(expansion.count):
            results[(expansion.task_id, i)] = TaskResult(
                expansion.task_id, TaskState.NONE, map_index=i
            )
    for change in decision.changes:
        results[key_of(change.task_id, change.map_index)].state = change.target
    return bool(decision.changes or decision.expansions)


def _lengths(dag: SerializedDag, results: dict[InstanceKey, TaskResult]) -> dict[str, int]:
    """What the scheduler reads from ``task_map`` and XCom counts, from the results."""
    if not dag.has_mapping:
        return {}
    lengths: dict[str, int] = {}
    for task_id in producers(dag):
        mine = [r for r in results.values() if r.task_id == task_id]
        if any(r.map_index >= 0 for r in mine):
            if all(r.state in FINISHED for r in mine):
                lengths[task_id] = sum(1 for r in mine if r.map_length is not None)
        elif mine and mine[0].map_length is not None:
            lengths[task_id] = mine[0].map_length
    return lengths


def _next_try(
    dag: DAG,
    spec: SerializedTask,
    last: TaskResult,
    run: RunInfo,
    store: Store,
) -> TaskResult:
    """Run a scheduled task's next try: a sensor's next poke keeps its try number, as
    in Airflow; a failed try that may be retried goes ``up_for_retry``."""
    try_number = last.try_number if last.rescheduled else last.try_number + 1
    result = run_task(
        dag,
        spec.task_id,
        run,
        store,
        try_number=try_number,
        test_mode=False,
        map_index=last.map_index,
    )
    if result.state is TaskState.UP_FOR_RESCHEDULE and result.message:
        result.ready_at = datetime.fromisoformat(result.message)
        result.rescheduled = True
    elif result.state is TaskState.FAILED and result.retryable and should_retry(spec, try_number):
        result.state = TaskState.UP_FOR_RETRY
        result.ready_at = next_try_at(spec, try_number, datetime.now(UTC))
    return result


def _wait_for_next(results: dict[InstanceKey, TaskResult], sleep: Callable[[float], None]) -> None:
    """Sleep until the soonest retry or poke; a run where nothing waits cannot progress."""
    waiting = [r.ready_at for r in results.values() if r.ready_at is not None]
    if not waiting:
        raise RuntimeError("no task is ready and none is waiting: the run cannot progress")
    sleep(max(0.0, (min(waiting) - datetime.now(UTC)).total_seconds()))


def manual_run_info(
    dag: SerializedDag, logical_date: datetime, conf: dict[str, Any] | None
) -> RunInfo:
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
    store: Store | None = None,
    *,
    try_number: int = 1,
    test_mode: bool = True,
    map_index: int = -1,
) -> TaskResult:
    """Run one try of one task in this process; returns its end (no retries).

    :param test_mode: ``tasks test`` runs in Airflow's test mode, ``dags test`` does not.
    """
    # rendering sets template fields on the task: a copy keeps the DAG's templates for the
    # next instance (a task in a mapped group runs once per element)
    task = copy.copy(dag.get_task(task_id))
    ti = InProcessTaskInstance(
        dag.dag_id,
        task_id,
        run.run_id,
        store if store is not None else {},
        map_index=map_index,
        try_number=try_number,
        max_tries=task.retries,
    )
    context = build_context(dag=dag, task=task, ti=ti, dag_run=run, test_mode=test_mode)
    started = time.perf_counter()
    # a deferral's trigger runs here, until its first event, as Airflow's dag.test() does
    outcome: TryOutcome = execute_try(
        task, context, timeout=timeout_seconds(task), xcom_max_size=1 << 30, inline_triggers=True
    )
    state = TaskState(outcome.state)
    message = outcome.reschedule_at if state is TaskState.UP_FOR_RESCHEDULE else outcome.message
    pushed = (task_id, map_index, "return_value") in ti.store
    return TaskResult(
        task_id,
        state,
        time.perf_counter() - started,
        message,
        list(outcome.skip_downstream),
        try_number,
        outcome.retryable,
        map_index=map_index,
        map_length=outcome.map_length if map_index < 0 else (1 if pushed else None),
        rendered_map_index=outcome.rendered_map_index,
    )
