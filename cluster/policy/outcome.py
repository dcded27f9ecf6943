"""Whether a run has finished, and how: Airflow's ``DagRun.update_state`` rules."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cluster.dagfiles.serialized import SerializedDag
from cluster.policy.changes import instance_key
from cluster.policy.readiness import can_progress
from cluster.policy.setup_teardown import setup_index
from cluster.states import FINISHED, DagRunState, TaskState

_LEAF_FAILED = frozenset({TaskState.FAILED, TaskState.UPSTREAM_FAILED})
_LEAF_SUCCEEDED = frozenset({TaskState.SUCCESS, TaskState.SKIPPED})
#: states an instance stays in until the scheduler or a user moves it
_SETTLED = FINISHED | {TaskState.NONE}


def run_state(dag: SerializedDag, ti_states: Mapping[Any, TaskState]) -> DagRunState | None:
    """The run's new state, or ``None`` while it is still running.

    * every instance finished and a leaf failed or is ``upstream_failed``: failed;
    * every instance finished and every leaf succeeded or was skipped: success;
    * unfinished instances remain but none can ever move (deadlock): failed.

    A failure away from the leaves does not fail the run when the leaves succeed
    (an ``all_done`` clean-up leaf, say), exactly as in Airflow. Teardowns are looked
    through: the tasks before a teardown count as leaves, and a teardown's own failure
    counts only with ``on_failure_fail_dagrun``. ``removed`` instances are ignored, and
    so are tasks without an instance. A mapped leaf counts each of its instances.

    :param ti_states: by task id, or by ``(task_id, map_index)`` for mapped instances.
    """
    tasks = dag.tasks
    for key, state in ti_states.items():
        # an instance of the DAG that is scheduled, queued, running or waits for a retry
        # will move by itself (see can_progress): the run goes on. Found before the dicts
        # below are built, so a running run of 1,000 mapped instances costs a short scan
        if state not in _SETTLED and (key if key.__class__ is str else key[0]) in tasks:
            return None
    known = {
        k: s
        for k, s in ti_states.items()
        if (k if k.__class__ is str else instance_key(k)[0]) in tasks
    }
    states = {k: s for k, s in known.items() if s is not TaskState.REMOVED}
    leaf_ids = set(setup_index(dag).run_leaves)
    leaves = [
        s
        for k, s in states.items()
        if (k if k.__class__ is str else instance_key(k)[0]) in leaf_ids
    ]
    if all(s in FINISHED for s in states.values()):
        if any(s in _LEAF_FAILED for s in leaves):
            return DagRunState.FAILED
        return DagRunState.SUCCESS
    # removed instances stay visible to the trigger rules: without them an all_success
    # task after a mapped task that shrank looked ready here, and the run never ended
    if not can_progress(dag, known):
        return DagRunState.FAILED
    return None
