"""The scheduler's pure decisions: plain snapshots in, decisions out, no I/O.

The loop loads snapshots from the metastore, asks these functions, writes their
answers with compare-and-set and dispatches. Everything here is testable without a
database and takes the current time as an argument.
"""

from __future__ import annotations

from cluster.policy.changes import StateChange
from cluster.policy.fit import (
    DagLoad,
    FitDecision,
    PoolSnapshot,
    QueueCandidate,
    TaskLoads,
    Unrunnable,
    select_to_queue,
)
from cluster.policy.outcome import run_state
from cluster.policy.readiness import InstanceSnapshot, can_progress, decide_task_states
from cluster.policy.retries import next_try_at, retry_delay, should_retry
from cluster.policy.runs import (
    RunPlan,
    RunSnapshot,
    RunToCreate,
    plan_runs,
    runs_to_start,
    scheduled_run_id,
    timed_out_runs,
    timeout_changes,
)
from cluster.policy.trigger_rules import UpstreamCounts, Verdict, evaluate_trigger_rule
from cluster.policy.weights import effective_priority_weights

__all__ = [
    "DagLoad",
    "FitDecision",
    "InstanceSnapshot",
    "PoolSnapshot",
    "QueueCandidate",
    "RunPlan",
    "RunSnapshot",
    "RunToCreate",
    "StateChange",
    "TaskLoads",
    "Unrunnable",
    "UpstreamCounts",
    "Verdict",
    "can_progress",
    "decide_task_states",
    "effective_priority_weights",
    "evaluate_trigger_rule",
    "next_try_at",
    "plan_runs",
    "retry_delay",
    "run_state",
    "runs_to_start",
    "scheduled_run_id",
    "select_to_queue",
    "should_retry",
    "timed_out_runs",
    "timeout_changes",
]
