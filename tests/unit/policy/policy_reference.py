"""A plain reference for the property tests: Airflow's trigger rules as documented.

Written separately from ``cluster.policy`` on purpose, as directly as the
documentation reads (plus Airflow's documented "can never be satisfied" outcomes),
so that the two can check each other.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

RUN, WAIT, SKIPPED, UPSTREAM_FAILED = "run", "wait", "skipped", "upstream_failed"


def reference_verdict(rule: str, upstream: Sequence[str | None]) -> str:
    """What Airflow does with a waiting task whose direct upstream states are these.

    ``None`` is an upstream that has not finished.
    """
    if not upstream or rule == "always":
        return RUN
    total = len(upstream)
    success = upstream.count("success")
    skipped = upstream.count("skipped")
    failed = upstream.count("failed")
    upstream_failed = upstream.count("upstream_failed")
    all_done = upstream.count(None) == 0
    any_failure = failed + upstream_failed > 0

    if rule == "all_success":
        if any_failure:
            return UPSTREAM_FAILED
        if skipped:
            return SKIPPED
        return RUN if success == total else WAIT
    if rule == "all_failed":
        if success or skipped:
            return SKIPPED
        return RUN if failed + upstream_failed == total else WAIT
    if rule == "all_done":
        return RUN if all_done else WAIT
    if rule == "all_done_min_one_success":
        if skipped:
            return SKIPPED
        if all_done:
            return RUN if success else UPSTREAM_FAILED
        return WAIT
    if rule == "all_skipped":
        if success or any_failure:
            return SKIPPED
        return RUN if skipped == total else WAIT
    if rule == "one_success":
        if success:
            return RUN
        if all_done:
            return SKIPPED if skipped == total else UPSTREAM_FAILED
        return WAIT
    if rule == "one_failed":
        if any_failure:
            return RUN
        return SKIPPED if all_done else WAIT
    if rule == "one_done":
        if success or failed:
            return RUN
        return SKIPPED if all_done else WAIT
    if rule == "none_failed":
        if any_failure:
            return UPSTREAM_FAILED
        return RUN if all_done else WAIT
    if rule == "none_failed_min_one_success":
        if any_failure:
            return UPSTREAM_FAILED
        if skipped == total:
            return SKIPPED
        return RUN if all_done else WAIT
    if rule == "none_skipped":
        if skipped:
            return SKIPPED
        return RUN if all_done else WAIT
    raise ValueError(rule)


def reference_final_states(
    *,
    order: Sequence[str],
    upstream: Mapping[str, Sequence[str]],
    rules: Mapping[str, str],
    outcome_if_run: Mapping[str, str],
    finished_at_step: Mapping[str, int],
    branch_skips: Mapping[str, Sequence[str]],
    last_step: int,
) -> dict[str, str]:
    """Every task's end state, replaying the run step by step.

    :param order: task ids, upstream before downstream.
    :param outcome_if_run: the end state a task reaches once it runs (after retries).
    :param finished_at_step: when each task that ran reached its end state; within a
        step, tasks finish (and branches skip their non-followed downstream tasks that
        are still waiting) before the scheduler decides.
    :param branch_skips: per branch task, the downstream tasks it does not follow.
    """
    final: dict[str, str] = {}
    done_at: dict[str, int] = {}
    for task in order:
        for step in range(last_step + 1):
            skipped_by = [
                b
                for b in upstream[task]
                if task in branch_skips.get(b, ())
                and b in finished_at_step
                and done_at.get(b) == step
            ]
            if skipped_by:
                final[task], done_at[task] = SKIPPED, step
                break
            seen = [
                final[u] if done_at.get(u, last_step + 1) <= step else None for u in upstream[task]
            ]
            verdict = reference_verdict(rules[task], seen)
            if verdict == RUN:
                final[task] = outcome_if_run[task]
                done_at[task] = finished_at_step.get(task, last_step + 1)
                break
            if verdict != WAIT:
                final[task], done_at[task] = verdict, step
                break
    return final


def reference_run_state(leaves: Sequence[str], final: Mapping[str, str]) -> str:
    """Airflow: the run failed when a leaf failed or is upstream_failed, else succeeded."""
    bad = {"failed", "upstream_failed"}
    return "failed" if any(final[leaf] in bad for leaf in leaves) else "success"
