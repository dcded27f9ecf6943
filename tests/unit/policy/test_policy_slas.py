"""Airflow 2.10's SLA rule (``manage_slas``), pure: which logical dates a task missed,
given the data interval of its latest successful run and the clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cluster.policy.slas import missed_dates
from cluster.sdk import DAG
from cluster.sdk.timetables import DataInterval, timetable_to_dict

DAY = timedelta(days=1)
LAST = DataInterval(datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 2, tzinfo=UTC))


def _daily() -> dict[str, object]:
    dag = DAG("daily", schedule="@daily", start_date=datetime(2024, 1, 1))
    return timetable_to_dict(dag.timetable)


def test_misses_start_at_the_second_interval_after_the_last_success() -> None:
    """Airflow skips the run right after the last success and names each miss after
    the logical date that follows; every later date whose ``date + sla`` passed is one."""
    now = LAST.end + 3 * DAY + timedelta(hours=2)
    found = missed_dates(_daily(), LAST, timedelta(hours=1), now=now)
    assert found == [LAST.end + DAY, LAST.end + 2 * DAY, LAST.end + 3 * DAY]


def test_a_date_whose_sla_has_not_passed_is_not_a_miss() -> None:
    now = LAST.end + 3 * DAY + timedelta(minutes=30)
    found = missed_dates(_daily(), LAST, timedelta(hours=1), now=now)
    assert found == [LAST.end + DAY, LAST.end + 2 * DAY]


def test_recorded_misses_are_not_recorded_again() -> None:
    now = LAST.end + 3 * DAY + timedelta(hours=2)
    recorded = {LAST.end + DAY, LAST.end + 3 * DAY}
    found = missed_dates(_daily(), LAST, timedelta(hours=1), now=now, recorded=recorded)
    assert found == [LAST.end + 2 * DAY]


def test_nothing_is_missed_right_after_a_success() -> None:
    found = missed_dates(_daily(), LAST, timedelta(hours=1), now=LAST.end + timedelta(hours=5))
    assert found == []


def test_an_unscheduled_dag_has_no_misses() -> None:
    dag = DAG("manual", schedule=None, start_date=datetime(2024, 1, 1))
    now = LAST.end + 30 * DAY
    assert missed_dates(timetable_to_dict(dag.timetable), LAST, DAY, now=now) == []
