"""Task-instance and DAG-run states, and the one table of allowed transitions.

Every state change in the metastore is a compare-and-set guarded by this table
(``cluster.metastore.transitions``); a move the table does not list is a bug.
"""

from __future__ import annotations

from enum import StrEnum

from cluster.errors import InvalidTransition


class TaskState(StrEnum):
    NONE = "none"
    SCHEDULED = "scheduled"
    QUEUED = "queued"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    UP_FOR_RETRY = "up_for_retry"
    UP_FOR_RESCHEDULE = "up_for_reschedule"
    #: the try handed a trigger to a triggerer and gave its slot back (Airflow 2.2+)
    DEFERRED = "deferred"
    UPSTREAM_FAILED = "upstream_failed"
    SKIPPED = "skipped"
    REMOVED = "removed"


class DagRunState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"


#: states a task instance never leaves by itself (only a clear moves it back to ``none``)
FINISHED: frozenset[TaskState] = frozenset(
    {
        TaskState.SUCCESS,
        TaskState.FAILED,
        TaskState.SKIPPED,
        TaskState.UPSTREAM_FAILED,
        TaskState.REMOVED,
    }
)

#: states in which a task instance holds an executor slot (and a pool slot)
OCCUPYING: frozenset[TaskState] = frozenset({TaskState.QUEUED, TaskState.RUNNING})

#: states that still need the scheduler's attention
UNFINISHED: frozenset[TaskState] = frozenset(TaskState) - FINISHED

_T = TaskState
#: system moves: scheduler, executor, runner, zombie and queued-timeout handling
TASK_TRANSITIONS: dict[TaskState, frozenset[TaskState]] = {
    # none → success: an EmptyOperator finishes when it is ready, never dispatched (as in Airflow)
    _T.NONE: frozenset({_T.SCHEDULED, _T.SUCCESS, _T.UPSTREAM_FAILED, _T.SKIPPED, _T.REMOVED}),
    # scheduled → failed: its pool_slots exceed the whole pool, so it can never run
    _T.SCHEDULED: frozenset({_T.QUEUED, _T.FAILED, _T.UPSTREAM_FAILED, _T.SKIPPED, _T.REMOVED}),
    _T.QUEUED: frozenset({_T.RUNNING, _T.SCHEDULED, _T.FAILED}),
    _T.RUNNING: frozenset(
        {_T.SUCCESS, _T.FAILED, _T.UP_FOR_RETRY, _T.UP_FOR_RESCHEDULE, _T.SKIPPED, _T.DEFERRED}
    ),
    # deferred → scheduled: the trigger fired, failed or timed out; the try resumes on a
    # worker (in next_method, or "__fail__" which fails it there so retries apply)
    _T.DEFERRED: frozenset({_T.SCHEDULED, _T.FAILED}),
    _T.UP_FOR_RETRY: frozenset({_T.SCHEDULED, _T.UPSTREAM_FAILED, _T.SKIPPED, _T.REMOVED}),
    _T.UP_FOR_RESCHEDULE: frozenset({_T.SCHEDULED, _T.UPSTREAM_FAILED, _T.SKIPPED}),
    _T.SUCCESS: frozenset(),
    _T.FAILED: frozenset(),
    _T.SKIPPED: frozenset(),
    _T.UPSTREAM_FAILED: frozenset(),
    _T.REMOVED: frozenset({_T.NONE}),
}

#: user moves from the CLI, the UI or the API: clear to ``none``, mark success or failed
USER_TARGETS: frozenset[TaskState] = frozenset({_T.NONE, _T.SUCCESS, _T.FAILED, _T.SKIPPED})

DAG_RUN_TRANSITIONS: dict[DagRunState, frozenset[DagRunState]] = {
    DagRunState.QUEUED: frozenset({DagRunState.RUNNING, DagRunState.FAILED}),
    DagRunState.RUNNING: frozenset({DagRunState.SUCCESS, DagRunState.FAILED, DagRunState.QUEUED}),
    DagRunState.SUCCESS: frozenset({DagRunState.QUEUED, DagRunState.RUNNING}),
    DagRunState.FAILED: frozenset({DagRunState.QUEUED, DagRunState.RUNNING}),
}


def sources_of(target: TaskState, *, by_user: bool = False) -> frozenset[TaskState]:
    """Return every state from which ``target`` may be reached.

    :param by_user: a user's clear or mark may move an instance from any state.
    :raises InvalidTransition: when nothing may move into ``target``.
    """
    if by_user:
        if target not in USER_TARGETS:
            raise InvalidTransition(f"users cannot set a task instance to {target!s}")
        return frozenset(TaskState) - {target}
    sources = frozenset(s for s, targets in TASK_TRANSITIONS.items() if target in targets)
    if not sources:
        raise InvalidTransition(f"no state may move to {target!s}")
    return sources


def check_task_transition(source: TaskState, target: TaskState) -> None:
    """Raise :class:`InvalidTransition` unless the system may move ``source → target``."""
    if target not in TASK_TRANSITIONS[source]:
        raise InvalidTransition(f"task instance cannot move from {source!s} to {target!s}")


def check_dag_run_transition(source: DagRunState, target: DagRunState) -> None:
    """Raise :class:`InvalidTransition` unless a DAG run may move ``source → target``."""
    if target not in DAG_RUN_TRANSITIONS[source]:
        raise InvalidTransition(f"DAG run cannot move from {source!s} to {target!s}")
