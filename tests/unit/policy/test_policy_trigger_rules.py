"""Every Airflow trigger rule: when it runs, waits, or can never be satisfied."""

from __future__ import annotations

import pytest

from cluster.errors import DagDefinitionError
from cluster.policy import UpstreamCounts, Verdict, evaluate_trigger_rule
from cluster.states import TaskState

S, F, K, U, R = (
    TaskState.SUCCESS,
    TaskState.FAILED,
    TaskState.SKIPPED,
    TaskState.UPSTREAM_FAILED,
    TaskState.REMOVED,
)
N = None  # still unfinished
RUN, WAIT, SKIP, UF = Verdict.RUN, Verdict.WAIT, Verdict.SKIP, Verdict.UPSTREAM_FAILED

CASES = [
    # all_success: a failure anywhere → upstream_failed, else a skip → skipped
    ("all_success", [S, S], RUN),
    ("all_success", [S, N], WAIT),
    ("all_success", [F, N], UF),
    ("all_success", [U, S], UF),
    ("all_success", [K, N], SKIP),
    ("all_success", [K, F], UF),
    ("all_success", [R, S], WAIT),  # removed is done but never a success
    # all_failed
    ("all_failed", [F, U], RUN),
    ("all_failed", [F, N], WAIT),
    ("all_failed", [F, S], SKIP),
    ("all_failed", [K, N], SKIP),
    # all_done
    ("all_done", [S, F, K, U], RUN),
    ("all_done", [S, N], WAIT),
    # all_done_min_one_success: a skip means skipped, all done without success → UF
    ("all_done_min_one_success", [S, F], RUN),
    ("all_done_min_one_success", [S, N], WAIT),
    ("all_done_min_one_success", [F, U], UF),
    ("all_done_min_one_success", [S, K], SKIP),
    ("all_done_min_one_success", [K, N], SKIP),
    # all_skipped
    ("all_skipped", [K, K], RUN),
    ("all_skipped", [K, N], WAIT),
    ("all_skipped", [K, S], SKIP),
    ("all_skipped", [U, N], SKIP),
    # one_success: runs at the first success; all done: all skipped → skipped, else UF
    ("one_success", [S, N], RUN),
    ("one_success", [F, N], WAIT),
    ("one_success", [K, K], SKIP),
    ("one_success", [K, F], UF),
    ("one_success", [U, U], UF),
    # one_failed
    ("one_failed", [F, N], RUN),
    ("one_failed", [U, N], RUN),
    ("one_failed", [S, N], WAIT),
    ("one_failed", [S, K], SKIP),
    # one_done: success or failed; upstream_failed and skipped do not count
    ("one_done", [S, N], RUN),
    ("one_done", [F, N], RUN),
    ("one_done", [U, N], WAIT),
    ("one_done", [U, K], SKIP),
    # none_failed
    ("none_failed", [S, K], RUN),
    ("none_failed", [K, K], RUN),
    ("none_failed", [S, N], WAIT),
    ("none_failed", [F, N], UF),
    ("none_failed", [U, S], UF),
    # none_failed_min_one_success
    ("none_failed_min_one_success", [S, K], RUN),
    ("none_failed_min_one_success", [K, K], SKIP),
    ("none_failed_min_one_success", [K, N], WAIT),
    ("none_failed_min_one_success", [F, K], UF),
    ("none_failed_or_skipped", [K, K], SKIP),  # the old name
    # none_skipped
    ("none_skipped", [S, F, U], RUN),
    ("none_skipped", [S, N], WAIT),
    ("none_skipped", [K, N], SKIP),
    # always, and its old name
    ("always", [N, N], RUN),
    ("dummy", [F, N], RUN),
]


@pytest.mark.parametrize(("rule", "upstream", "verdict"), CASES)
def test_trigger_rule_verdict(
    rule: str, upstream: list[TaskState | None], verdict: Verdict
) -> None:
    assert evaluate_trigger_rule(rule, UpstreamCounts.of(upstream)) is verdict


@pytest.mark.parametrize("rule", ["all_success", "all_failed", "one_failed", "all_skipped"])
def test_a_task_without_upstream_always_runs(rule: str) -> None:
    assert evaluate_trigger_rule(rule, UpstreamCounts(total=0)) is RUN


def test_unknown_rule_is_a_definition_error() -> None:
    with pytest.raises(DagDefinitionError, match="unknown trigger rule 'most_success'"):
        evaluate_trigger_rule("most_success", UpstreamCounts.of([S]))
