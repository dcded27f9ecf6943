"""Airflow's trigger rules as one pure table: upstream counts in, a verdict out.

Each rule answers two questions, in Airflow 2.10's order (``TriggerRuleDep``): can this
instance never run, so that it must be marked ``skipped`` or ``upstream_failed`` now
(checked first), and if not, does it run now or wait. The counts are over *direct*
upstream instances only; skips and failures travel further because every instance
that is marked becomes an upstream of the next.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum

from cluster.errors import DagDefinitionError
from cluster.states import TaskState


class Verdict(StrEnum):
    RUN = "run"
    WAIT = "wait"
    SKIP = "skip"
    UPSTREAM_FAILED = "upstream_failed"


@dataclass(frozen=True)
class UpstreamCounts:
    """How many direct upstream instances are in each finished state.

    ``total`` is the number of upstream tasks; those not counted are still unfinished.
    ``removed`` counts as done but never as a success, as in Airflow.
    """

    total: int
    success: int = 0
    skipped: int = 0
    failed: int = 0
    upstream_failed: int = 0
    removed: int = 0

    @property
    def done(self) -> int:
        return self.success + self.skipped + self.failed + self.upstream_failed + self.removed

    @property
    def all_done(self) -> bool:
        return self.done >= self.total

    @property
    def failures(self) -> int:
        return self.failed + self.upstream_failed

    @classmethod
    def of(cls, states: Iterable[TaskState | None]) -> UpstreamCounts:
        """Count a sequence of upstream states (``None``: no instance yet)."""
        listed = list(states)
        return cls(
            total=len(listed),
            success=listed.count(TaskState.SUCCESS),
            skipped=listed.count(TaskState.SKIPPED),
            failed=listed.count(TaskState.FAILED),
            upstream_failed=listed.count(TaskState.UPSTREAM_FAILED),
            removed=listed.count(TaskState.REMOVED),
        )


_Rule = Callable[[UpstreamCounts], Verdict]
R = Verdict


def _all_success(c: UpstreamCounts) -> Verdict:
    if c.failures:
        return R.UPSTREAM_FAILED
    if c.skipped:
        return R.SKIP
    return R.RUN if c.success >= c.total else R.WAIT


def _all_failed(c: UpstreamCounts) -> Verdict:
    if c.success or c.skipped:
        return R.SKIP
    return R.RUN if c.failures >= c.total else R.WAIT


def _all_done(c: UpstreamCounts) -> Verdict:
    return R.RUN if c.all_done else R.WAIT


def _all_done_min_one_success(c: UpstreamCounts) -> Verdict:
    # Airflow counts a skipped upstream as "cannot be satisfied" for this rule.
    non_skipped_done = c.success + c.failed + c.upstream_failed + c.removed
    if c.skipped:
        return R.SKIP
    if non_skipped_done >= c.total and c.success == 0:
        return R.UPSTREAM_FAILED
    return R.RUN if non_skipped_done >= c.total and c.success else R.WAIT


def _all_skipped(c: UpstreamCounts) -> Verdict:
    if c.success or c.failures:
        return R.SKIP
    return R.RUN if c.skipped >= c.total else R.WAIT


def _one_success(c: UpstreamCounts) -> Verdict:
    if c.all_done and c.done == c.skipped:
        return R.SKIP
    if c.all_done and c.success == 0:
        return R.UPSTREAM_FAILED
    return R.RUN if c.success else R.WAIT


def _one_failed(c: UpstreamCounts) -> Verdict:
    if c.all_done and not c.failures:
        return R.SKIP
    return R.RUN if c.failures else R.WAIT


def _one_done(c: UpstreamCounts) -> Verdict:
    # "done" here means succeeded or failed: upstream_failed and skipped do not count.
    if c.all_done and not (c.failed or c.success):
        return R.SKIP
    return R.RUN if c.success + c.failed else R.WAIT


def _none_failed(c: UpstreamCounts) -> Verdict:
    if c.failures:
        return R.UPSTREAM_FAILED
    return R.RUN if c.success + c.skipped >= c.total else R.WAIT


def _none_failed_min_one_success(c: UpstreamCounts) -> Verdict:
    if c.failures:
        return R.UPSTREAM_FAILED
    if c.skipped == c.total:
        return R.SKIP
    return R.RUN if c.success + c.skipped >= c.total else R.WAIT


def _none_skipped(c: UpstreamCounts) -> Verdict:
    if c.skipped:
        return R.SKIP
    return R.RUN if c.all_done else R.WAIT


def _always(c: UpstreamCounts) -> Verdict:
    return R.RUN


RULES: dict[str, _Rule] = {
    "all_success": _all_success,
    "all_failed": _all_failed,
    "all_done": _all_done,
    "all_done_min_one_success": _all_done_min_one_success,
    "all_skipped": _all_skipped,
    "one_success": _one_success,
    "one_failed": _one_failed,
    "one_done": _one_done,
    "none_failed": _none_failed,
    "none_failed_min_one_success": _none_failed_min_one_success,
    "none_skipped": _none_skipped,
    "always": _always,
}

#: a teardown's rule, which also looks at which upstream tasks are setups
SETUP_RULE = "all_done_setup_success"

#: names Airflow still accepts for two of the rules
ALIASES: dict[str, str] = {
    "none_failed_or_skipped": "none_failed_min_one_success",
    "dummy": "always",
}


def evaluate_trigger_rule(rule: str, counts: UpstreamCounts) -> Verdict:
    """The verdict of ``rule`` for an instance with these upstream ``counts``.

    An instance with no upstream task always runs, whatever its rule (Airflow skips
    the trigger-rule check for it). ``all_done_setup_success`` also needs the counts
    of the upstream setups: :func:`cluster.policy.setup_teardown.all_done_setup_success`;
    here, without them, it is ``all_done``.

    :raises DagDefinitionError: for a rule Airflow does not know.
    """
    if counts.total == 0:
        return R.RUN
    if rule == SETUP_RULE:
        return _all_done(counts)
    try:
        evaluate = RULES[ALIASES.get(rule, rule)]
    except KeyError:
        known = ", ".join(RULES)
        raise DagDefinitionError(f"unknown trigger rule {rule!r}: use one of {known}") from None
    return evaluate(counts)
