"""LatestOnly, BranchDateTime, BranchDayOfWeek and BaseBranchOperator, run in process,
with Airflow 2.10's rules."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import pendulum
import pytest

from cluster.errors import TradewindError
from cluster.operators.branch import BaseBranchOperator
from cluster.operators.datetime import BranchDateTimeOperator, target_times_as_dates
from cluster.operators.empty import EmptyOperator
from cluster.operators.latest_only import LatestOnlyOperator
from cluster.operators.weekday import BranchDayOfWeekOperator
from cluster.sdk import DAG, WeekDay
from cluster.sdk.baseoperator import BaseOperator
from cluster.sdk.context import RunInfo, build_context
from cluster.sdk.taskrun import execute_task
from cluster.sdk.testing import InMemoryTaskInstance

UTC = dt.UTC


def at(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def run(
    op: BaseOperator,
    *,
    run_type: str = "scheduled",
    logical_date: dt.datetime = at(2024, 1, 1),
    interval: tuple[dt.datetime, dt.datetime] | None = None,
) -> tuple[Any, list[str]]:
    """Execute ``op`` once in a run of the given type; its result and what it skipped."""
    start, end = interval or (logical_date, logical_date)
    dag_run = RunInfo(op.dag_id, "r", logical_date, start, end, run_type=run_type)
    ti = InMemoryTaskInstance(op.dag_id, op.task_id, "r")
    context = build_context(dag=op.dag, task=op, ti=ti, dag_run=dag_run)
    return execute_task(op, context), ti.skipped


def with_downstream(op_factory: Any, **dag_kwargs: Any) -> Any:
    with DAG("d", **dag_kwargs):
        op = op_factory()
        op >> [EmptyOperator(task_id="a"), EmptyOperator(task_id="b")]
    return op


# --- BaseBranchOperator -------------------------------------------------------------


class ChooseB(BaseBranchOperator):
    def choose_branch(self, context: dict[str, Any]) -> str | Iterable[str]:
        return "b"


def test_base_branch_operator_follows_choose_branch_and_returns_it() -> None:
    result, skipped = run(with_downstream(lambda: ChooseB(task_id="pick")))
    assert result == "b" and skipped == ["a"]


def test_base_branch_operator_needs_choose_branch() -> None:
    with pytest.raises(NotImplementedError):
        run(with_downstream(lambda: BaseBranchOperator(task_id="pick")))


# --- LatestOnlyOperator -------------------------------------------------------------


def latest(clock_at: dt.datetime, schedule: Any = "@daily") -> LatestOnlyOperator:
    op: LatestOnlyOperator = with_downstream(
        lambda: LatestOnlyOperator(task_id="latest_only"),
        schedule=schedule,
        start_date=at(2024, 1, 1),
    )
    op._clock = lambda: clock_at
    return op


def test_latest_only_skips_a_scheduled_run_that_is_not_the_latest() -> None:
    # the run of [Jan 1, Jan 2) is the latest only while now is in (Jan 2, Jan 3]
    op = latest(at(2024, 1, 5))
    assert run(op, interval=(at(2024, 1, 1), at(2024, 1, 2))) == ([], ["a", "b"])


def test_latest_only_lets_the_latest_scheduled_run_proceed() -> None:
    op = latest(at(2024, 1, 2, 12))
    result, skipped = run(op, interval=(at(2024, 1, 1), at(2024, 1, 2)))
    assert sorted(result) == ["a", "b"] and skipped == []


def test_latest_only_window_is_left_open_and_right_closed() -> None:
    interval = (at(2024, 1, 1), at(2024, 1, 2))
    assert run(latest(at(2024, 1, 2)), interval=interval)[1] == ["a", "b"]  # now == left
    assert run(latest(at(2024, 1, 3)), interval=interval)[1] == []  # now == right


def test_latest_only_never_skips_a_manual_run() -> None:
    op = latest(at(2030, 1, 1))
    result, skipped = run(op, run_type="manual", interval=(at(2024, 1, 1), at(2024, 1, 2)))
    assert sorted(result) == ["a", "b"] and skipped == []


def test_latest_only_proceeds_when_the_timetable_has_no_next_run() -> None:
    op = latest(at(2030, 1, 1), schedule="@once")
    assert run(op, interval=(at(2024, 1, 1), at(2024, 1, 1)))[1] == []


# --- BranchDateTimeOperator ---------------------------------------------------------


def window(**kwargs: Any) -> BranchDateTimeOperator:
    return with_downstream(
        lambda: BranchDateTimeOperator(
            task_id="when", follow_task_ids_if_true="a", follow_task_ids_if_false="b", **kwargs
        )
    )


@pytest.mark.parametrize(
    ("now", "follows"),
    [(at(2024, 3, 1, 10), "a"), (at(2024, 3, 1, 8), "b"), (at(2024, 3, 1, 12, 1), "b")],
)
def test_branch_datetime_with_times_compares_the_clock(now: dt.datetime, follows: str) -> None:
    op = window(target_lower=dt.time(9), target_upper=dt.time(12))
    op._clock = lambda: now
    assert run(op)[0] == follows


def test_branch_datetime_window_past_midnight() -> None:
    op = window(target_lower=dt.time(22), target_upper=dt.time(2))
    op._clock = lambda: at(2024, 3, 1, 23)
    assert run(op)[0] == "a"
    assert target_times_as_dates(at(2024, 3, 1), dt.time(22), dt.time(2)) == (
        dt.datetime(2024, 3, 1, 22),
        dt.datetime(2024, 3, 2, 2),
    )


def test_branch_datetime_uses_the_logical_date_when_asked() -> None:
    op = window(
        target_lower=pendulum.datetime(2020, 10, 10, 15),
        target_upper=pendulum.datetime(2020, 10, 10, 16),
        use_task_logical_date=True,
    )
    op._clock = lambda: at(2030, 1, 1)
    assert run(op, logical_date=at(2020, 10, 10, 15, 30))[0] == "a"
    assert run(op, logical_date=at(2020, 10, 10, 17))[0] == "b"


def test_branch_datetime_one_open_bound_and_none_at_all() -> None:
    op = window(target_lower=None, target_upper=at(2024, 1, 1))
    op._clock = lambda: at(2023, 6, 1)
    assert run(op)[0] == "a"
    with pytest.raises(TradewindError, match="Both target_upper and target_lower are None"):
        window(target_lower=None, target_upper=None)


def test_branch_datetime_reads_naive_targets_in_the_dag_timezone() -> None:
    def make() -> BranchDateTimeOperator:
        return BranchDateTimeOperator(
            task_id="when",
            follow_task_ids_if_true="a",
            follow_task_ids_if_false="b",
            target_lower=dt.time(9),
            target_upper=dt.time(10),
        )

    op = with_downstream(make, start_date=pendulum.datetime(2024, 1, 1, tz="Europe/Amsterdam"))
    op._clock = lambda: at(2024, 3, 1, 8, 30)  # 09:30 in Amsterdam
    assert run(op)[0] == "a"


# --- BranchDayOfWeekOperator --------------------------------------------------------


def weekday(**kwargs: Any) -> BranchDayOfWeekOperator:
    return with_downstream(
        lambda: BranchDayOfWeekOperator(
            task_id="day", follow_task_ids_if_true="a", follow_task_ids_if_false="b", **kwargs
        )
    )


def test_branch_day_of_week_on_the_clock_and_on_the_logical_date() -> None:
    op = weekday(week_day={WeekDay.SATURDAY, "Sunday"})
    op._clock = lambda: at(2024, 3, 2)  # a Saturday
    assert run(op)[0] == "a"
    op._clock = lambda: at(2024, 3, 4)  # a Monday
    assert run(op)[0] == "b"
    by_date = weekday(week_day="Monday", use_task_logical_date=True)
    assert run(by_date, logical_date=at(2024, 3, 4))[0] == "a"


def test_branch_day_of_week_rejects_an_unknown_day() -> None:
    with pytest.raises(AttributeError, match="Invalid Week Day"):
        weekday(week_day="Funday")
