"""Whether a run has finished, and how: Airflow's ``DagRun.update_state`` rules."""

from __future__ import annotations

from collections.abc import Mapping

from cluster.dagfiles.serialized import SerializedDag
from cluster.policy.readiness import can_progress
from cluster.policy.setup_teardown import setup_index
from cluster.states import FINISHED, DagRunState, TaskState

_LEAF_FAILED = frozenset({TaskState.FAILED, TaskState.UPSTREAM_FAILED})
_LEAF_SUCCEEDED = frozenset({TaskState.SUCCESS, TaskState.SKIPPED})


def run_state(dag: SerializedDag, ti_states: Mapping[str, TaskState]) -> DagRunState | None:
    """The run's new state, or ``None`` while it is still running.

    * every instance finished and a leaf failed or is ``upstream_failed``: failed;
    * every instance finished and every leaf succeeded or was skipped: success;
    * unfinished instances remain but none can ever move (deadlock): failed.

    A failure away from the leaves does not fail the run when the leaves succeed
    (an ``all_done`` clean-up leaf, say), exactly as in Airflow. Teardowns are looked
    through: the tasks before a teardown count as leaves, and a teardown's own failure
    counts only with ``on_failure_fail_dagrun``. ``removed`` instances are ignored, and
    so are tasks without an instance.
    """
    states = {t: s for t, s in ti_states.items() if s is not TaskState.REMOVED and t in dag.tasks}
    leaves = [states[t] for t in setup_index(dag).run_leaves if t in states]
    if all(s in FINISHED for s in states.values()):
        if any(s in _LEAF_FAILED for s in leaves):
            return DagRunState.FAILED
        return DagRunState.SUCCESS
    if not can_progress(dag, states):
        return DagRunState.FAILED
    return None
