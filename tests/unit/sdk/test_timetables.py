"""Timetables follow Airflow's data-interval semantics, in any timezone, across DST."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from cluster.errors import DagDefinitionError
from cluster.sdk.timetables import (
    ContinuousTimetable,
    CronDataIntervalTimetable,
    CronTriggerTimetable,
    DagRunInfo,
    DataInterval,
    DeltaDataIntervalTimetable,
    NullTimetable,
    OnceTimetable,
    TimeRestriction,
    Timetable,
    timetable_from_dict,
    timetable_from_schedule,
    timetable_to_dict,
)

AMS = ZoneInfo("Europe/Amsterdam")
NYC = ZoneInfo("America/New_York")
FAR_FUTURE = datetime(2100, 1, 1, tzinfo=UTC)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def runs(
    tt: Timetable,
    *,
    start: datetime | None,
    end: datetime | None = None,
    catchup: bool = True,
    now: datetime = FAR_FUTURE,
    limit: int = 10,
) -> list[DagRunInfo]:
    """Every automated run the timetable creates, as the scheduler would ask for them."""
    found: list[DagRunInfo] = []
    last: DataInterval | None = None
    restriction = TimeRestriction(start, end, catchup)
    for _ in range(limit):
        info = tt.next_dagrun_info(
            last_automated_data_interval=last, restriction=restriction, now=now
        )
        if info is None or info.run_after > now:
            break
        found.append(info)
        last = info.data_interval
    return found


# --- presets and construction -----------------------------------------------------------


@pytest.mark.parametrize(
    ("preset", "first_start", "first_end"),
    [
        ("@hourly", utc(2024, 1, 1, 0), utc(2024, 1, 1, 1)),
        ("@daily", utc(2024, 1, 1), utc(2024, 1, 2)),
        ("@weekly", utc(2024, 1, 7), utc(2024, 1, 14)),  # Sundays
        ("@monthly", utc(2024, 1, 1), utc(2024, 2, 1)),
        ("@quarterly", utc(2024, 1, 1), utc(2024, 4, 1)),
        ("@yearly", utc(2024, 1, 1), utc(2025, 1, 1)),
    ],
)
def test_each_cron_preset_gives_its_interval(
    preset: str, first_start: datetime, first_end: datetime
) -> None:
    tt = timetable_from_schedule(preset, timezone="UTC")
    assert isinstance(tt, CronDataIntervalTimetable)
    assert tt.summary == preset
    assert tt.periodic and tt.can_be_scheduled
    first = runs(tt, start=utc(2024, 1, 1), limit=1)[0]
    assert first.data_interval == DataInterval(first_start, first_end)
    assert first.run_after == first_end
    assert first.logical_date == first_start


def test_schedule_kinds_map_to_timetables() -> None:
    assert timetable_from_schedule(None, timezone="UTC") == NullTimetable()
    assert timetable_from_schedule("@once", timezone="UTC") == OnceTimetable()
    assert timetable_from_schedule("@continuous", timezone="UTC") == ContinuousTimetable()
    delta = timetable_from_schedule(timedelta(days=1), timezone="UTC")
    assert delta == DeltaDataIntervalTimetable(timedelta(days=1))
    assert delta.summary == "1 day, 0:00:00"
    cron = timetable_from_schedule("0 6 * * 1", timezone="Europe/Amsterdam")
    assert cron == CronDataIntervalTimetable("0 6 * * 1", "Europe/Amsterdam")
    assert cron.summary == "0 6 * * 1"
    assert NullTimetable().summary is None
    assert not NullTimetable().can_be_scheduled
    assert not OnceTimetable().periodic


def test_a_timetable_instance_is_returned_as_is() -> None:
    tt = CronTriggerTimetable("0 1 * * *", "UTC")
    assert timetable_from_schedule(tt, timezone="Europe/Amsterdam") is tt


@pytest.mark.parametrize(
    ("schedule", "says"),
    [
        ("61 * * * *", "61 * * * *"),
        ("* * *", "exactly 5"),
        ("0 0 * * * *", "exactly 5"),
        ("0 0 30 2 *", "0 0 30 2 *"),
        ("every day", "exactly 5"),
        ("@fortnightly", "unknown schedule preset"),
    ],
)
def test_a_bad_cron_raises_a_definition_error_saying_what_is_wrong(
    schedule: str, says: str
) -> None:
    with pytest.raises(DagDefinitionError, match=r"(?i)" + says.replace("*", r"\*")):
        timetable_from_schedule(schedule, timezone="UTC")


def test_bad_timezone_and_bad_delta_are_definition_errors() -> None:
    with pytest.raises(DagDefinitionError, match="timezone"):
        timetable_from_schedule("@daily", timezone="Mars/Olympus")
    with pytest.raises(DagDefinitionError, match="positive"):
        timetable_from_schedule(timedelta(0), timezone="UTC")


# --- Airflow's documented examples -------------------------------------------------------


def test_airflow_docs_daily_run_covers_the_day_before() -> None:
    # "a DAG run scheduled @daily ... with start_date 2016-01-01 runs its first
    # interval 2016-01-01 to 2016-01-02 just after midnight on 2016-01-02"
    tt = timetable_from_schedule("@daily", timezone="UTC")
    first = runs(tt, start=utc(2016, 1, 1), limit=1)[0]
    assert first.logical_date == utc(2016, 1, 1)
    assert first.run_after == utc(2016, 1, 2)


def test_airflow_docs_catchup_false_picked_up_at_six_runs_only_the_latest() -> None:
    # Airflow's catchup docs: start 2015-12-01, daily, picked up 2016-01-02 06:00 → one
    # run for 2016-01-01..02; the next one just after midnight on 2016-01-03.
    tt = timetable_from_schedule("@daily", timezone="UTC")
    now = utc(2016, 1, 2, 6)
    created = runs(tt, start=utc(2015, 12, 1), catchup=False, now=now)
    assert [r.data_interval for r in created] == [DataInterval(utc(2016, 1, 1), utc(2016, 1, 2))]
    later = tt.next_dagrun_info(
        last_automated_data_interval=created[0].data_interval,
        restriction=TimeRestriction(utc(2015, 12, 1), None, False),
        now=now,
    )
    assert later is not None and later.run_after == utc(2016, 1, 3)


def test_airflow_docs_manual_trigger_covers_the_last_complete_interval() -> None:
    # "triggered at 1am on the 25th, a daily DAG's data interval is the 24th"
    tt = timetable_from_schedule("@daily", timezone="UTC")
    assert tt.infer_manual_data_interval(utc(2024, 1, 25, 1)) == DataInterval(
        utc(2024, 1, 24), utc(2024, 1, 25)
    )


def test_manual_interval_for_other_timetables() -> None:
    at = utc(2024, 1, 25, 1)
    assert NullTimetable().infer_manual_data_interval(at) == DataInterval(at, at)
    assert OnceTimetable().infer_manual_data_interval(at) == DataInterval(at, at)
    delta = DeltaDataIntervalTimetable(timedelta(hours=6))
    assert delta.infer_manual_data_interval(at) == DataInterval(at - timedelta(hours=6), at)
    trigger = CronTriggerTimetable("0 * * * *", "UTC")
    assert trigger.infer_manual_data_interval(at) == DataInterval(at, at)
    # exactly on a boundary: the interval that ends right then
    daily = timetable_from_schedule("@daily", timezone="UTC")
    assert daily.infer_manual_data_interval(utc(2024, 1, 25)) == DataInterval(
        utc(2024, 1, 24), utc(2024, 1, 25)
    )


# --- catchup, start and end dates -------------------------------------------------------


def test_catchup_true_creates_every_interval_from_the_start_date() -> None:
    tt = timetable_from_schedule("@daily", timezone="UTC")
    created = runs(tt, start=utc(2024, 1, 1), now=utc(2024, 1, 5, 12))
    assert [r.logical_date for r in created] == [utc(2024, 1, d) for d in (1, 2, 3, 4)]


def test_catchup_false_creates_only_the_latest_complete_interval() -> None:
    tt = timetable_from_schedule("@daily", timezone="UTC")
    created = runs(tt, start=utc(2024, 1, 1), catchup=False, now=utc(2024, 1, 5, 12))
    assert [r.logical_date for r in created] == [utc(2024, 1, 4)]


def test_catchup_false_exactly_on_a_boundary_runs_the_interval_that_just_ended() -> None:
    tt = timetable_from_schedule("@daily", timezone="UTC")
    created = runs(tt, start=utc(2024, 1, 1), catchup=False, now=utc(2024, 1, 5))
    assert [r.logical_date for r in created] == [utc(2024, 1, 4)]


def test_catchup_false_never_goes_before_the_start_date() -> None:
    tt = timetable_from_schedule("@daily", timezone="UTC")
    info = tt.next_dagrun_info(
        last_automated_data_interval=None,
        restriction=TimeRestriction(utc(2024, 3, 1), None, False),
        now=utc(2024, 1, 5, 12),
    )
    assert info is not None and info.logical_date == utc(2024, 3, 1)


def test_unaligned_start_date_begins_at_the_next_boundary() -> None:
    tt = timetable_from_schedule("0 6 * * *", timezone="UTC")
    first = runs(tt, start=utc(2024, 1, 1, 7, 15), limit=1)[0]
    assert first.data_interval == DataInterval(utc(2024, 1, 2, 6), utc(2024, 1, 3, 6))


def test_aligned_start_date_is_the_first_logical_date() -> None:
    tt = timetable_from_schedule("0 6 * * *", timezone="UTC")
    first = runs(tt, start=utc(2024, 1, 1, 6), limit=1)[0]
    assert first.logical_date == utc(2024, 1, 1, 6)


def test_end_date_stops_runs_whose_interval_starts_after_it() -> None:
    tt = timetable_from_schedule("@daily", timezone="UTC")
    created = runs(tt, start=utc(2024, 1, 1), end=utc(2024, 1, 3))
    assert [r.logical_date for r in created] == [utc(2024, 1, 1), utc(2024, 1, 2), utc(2024, 1, 3)]


def test_no_start_date_means_no_automated_run() -> None:
    for tt in (timetable_from_schedule("@daily", timezone="UTC"), OnceTimetable()):
        assert runs(tt, start=None) == []


def test_null_timetable_never_schedules() -> None:
    assert runs(NullTimetable(), start=utc(2024, 1, 1)) == []


def test_once_runs_once_at_the_start_date_even_without_catchup() -> None:
    created = runs(OnceTimetable(), start=utc(2024, 1, 1, 8), catchup=False)
    assert created == [DagRunInfo.exact(utc(2024, 1, 1, 8))]
    assert runs(OnceTimetable(), start=utc(2024, 1, 1), end=utc(2023, 1, 1)) == []


def test_continuous_runs_back_to_back_from_now() -> None:
    tt = ContinuousTimetable()
    assert tt.active_runs_limit == 1
    now = utc(2024, 1, 1, 12)
    first = tt.next_dagrun_info(
        last_automated_data_interval=None,
        restriction=TimeRestriction(utc(2024, 1, 1), None, False),
        now=now,
    )
    assert first == DagRunInfo.interval(utc(2024, 1, 1), now)
    later = utc(2024, 1, 1, 12, 5)
    second = tt.next_dagrun_info(
        last_automated_data_interval=first.data_interval if first else None,
        restriction=TimeRestriction(utc(2024, 1, 1), None, False),
        now=later,
    )
    assert second == DagRunInfo.interval(now, later)


# --- delta timetables ------------------------------------------------------------------


def test_delta_counts_from_the_start_date_with_catchup() -> None:
    tt = DeltaDataIntervalTimetable(timedelta(hours=5))
    created = runs(tt, start=utc(2024, 1, 1, 1), now=utc(2024, 1, 1, 17))
    assert [r.logical_date for r in created] == [utc(2024, 1, 1, h) for h in (1, 6, 11)]
    assert created[0].data_interval.end == utc(2024, 1, 1, 6)


def test_delta_without_catchup_starts_one_delta_before_now_rounded_to_the_epoch() -> None:
    tt = DeltaDataIntervalTimetable(timedelta(hours=1))
    created = runs(tt, start=utc(2024, 1, 1), catchup=False, now=utc(2024, 1, 3, 10, 20))
    assert [r.data_interval for r in created] == [
        DataInterval(utc(2024, 1, 3, 9), utc(2024, 1, 3, 10))
    ]


# --- timezones and DST -----------------------------------------------------------------


def test_cron_runs_on_the_wall_clock_of_the_dag_timezone() -> None:
    tt = timetable_from_schedule("0 6 * * *", timezone="America/New_York")
    first = runs(tt, start=utc(2024, 1, 10), limit=1)[0]
    assert first.logical_date == datetime(2024, 1, 10, 6, tzinfo=NYC)
    assert first.logical_date.tzinfo == UTC


def test_amsterdam_spring_forward_daily_0230_runs_once_at_0330() -> None:
    # 2024-03-31 02:00 → 03:00 in Amsterdam: 02:30 does not exist that day.
    tt = timetable_from_schedule("30 2 * * *", timezone="Europe/Amsterdam")
    created = runs(tt, start=utc(2024, 3, 29), now=utc(2024, 4, 4), limit=5)
    local = [r.logical_date.astimezone(AMS) for r in created]
    assert [(t.day, t.hour, t.minute) for t in local] == [
        (29, 2, 30),
        (30, 2, 30),
        (31, 3, 30),
        (1, 2, 30),
        (2, 2, 30),
    ]
    assert created[2].data_interval.end - created[2].data_interval.start == timedelta(hours=23)


def test_new_york_spring_forward_daily_0230() -> None:
    # 2024-03-10 02:00 → 03:00 in New York
    tt = timetable_from_schedule("30 2 * * *", timezone="America/New_York")
    created = runs(tt, start=utc(2024, 3, 9), now=utc(2024, 3, 14), limit=4)
    local = [r.logical_date.astimezone(NYC) for r in created]
    assert [(t.day, t.hour) for t in local] == [(9, 2), (10, 3), (11, 2), (12, 2)]


def test_amsterdam_fall_back_hourly_runs_every_real_hour() -> None:
    # 2024-10-27 03:00 CEST → 02:00 CET: the 02:xx hour happens twice.
    tt = timetable_from_schedule("@hourly", timezone="Europe/Amsterdam")
    created = runs(tt, start=utc(2024, 10, 26, 23), now=utc(2024, 10, 27, 4))
    starts = [r.logical_date for r in created]
    assert starts == [utc(2024, 10, 26, 23) + timedelta(hours=h) for h in range(5)]
    assert [s.astimezone(AMS).hour for s in starts] == [1, 2, 2, 3, 4]
    assert all(r.data_interval.end - r.data_interval.start == timedelta(hours=1) for r in created)


def test_new_york_fall_back_hourly_at_half_past() -> None:
    # 2024-11-03 02:00 EDT → 01:00 EST
    tt = timetable_from_schedule("30 * * * *", timezone="America/New_York")
    created = runs(tt, start=utc(2024, 11, 3, 4, 30), now=utc(2024, 11, 3, 9))
    starts = [r.logical_date for r in created]
    assert starts == [utc(2024, 11, 3, 4, 30) + timedelta(hours=h) for h in range(4)]
    assert [s.astimezone(NYC).hour for s in starts] == [0, 1, 1, 2]


def test_fall_back_daily_ambiguous_time_takes_the_second_occurrence() -> None:
    tt = timetable_from_schedule("30 2 * * *", timezone="Europe/Amsterdam")
    created = runs(tt, start=utc(2024, 10, 26), now=utc(2024, 10, 29))
    assert created[1].logical_date == utc(2024, 10, 27, 1, 30)  # 02:30 CET
    assert created[1].data_interval.end - created[1].logical_date == timedelta(hours=24)
    assert created[0].data_interval.end - created[0].logical_date == timedelta(hours=25)


def test_naive_and_pendulum_inputs_are_accepted() -> None:
    pendulum = pytest.importorskip("pendulum")
    tt = timetable_from_schedule("@daily", timezone="UTC")
    start = pendulum.datetime(2024, 1, 1, tz="Europe/Amsterdam")  # 2023-12-31 23:00 UTC
    first = runs(tt, start=start, limit=1)[0]
    assert first.logical_date == utc(2024, 1, 1)
    naive = runs(tt, start=datetime(2024, 1, 1), limit=1)[0]
    assert naive.logical_date == utc(2024, 1, 1)


# --- CronTriggerTimetable --------------------------------------------------------------


def test_cron_trigger_runs_at_the_cron_time_with_that_logical_date() -> None:
    tt = CronTriggerTimetable("0 1 * * *", "UTC")
    created = runs(tt, start=utc(2024, 1, 1), now=utc(2024, 1, 3, 12))
    assert [r.logical_date for r in created] == [
        utc(2024, 1, 1, 1),
        utc(2024, 1, 2, 1),
        utc(2024, 1, 3, 1),
    ]
    assert all(r.run_after == r.logical_date for r in created)


def test_cron_trigger_without_catchup_runs_the_latest_fire_time() -> None:
    tt = CronTriggerTimetable("0 1 * * *", "UTC")
    created = runs(tt, start=utc(2024, 1, 1), catchup=False, now=utc(2024, 1, 5, 12))
    assert [r.logical_date for r in created] == [utc(2024, 1, 5, 1)]


# --- serialization --------------------------------------------------------------------


@pytest.mark.parametrize(
    "tt",
    [
        NullTimetable(),
        OnceTimetable(),
        ContinuousTimetable(),
        CronDataIntervalTimetable("@daily", "UTC"),
        CronDataIntervalTimetable("0 6 * * 1", "Europe/Amsterdam"),
        DeltaDataIntervalTimetable(timedelta(days=1, seconds=3, microseconds=7)),
        CronTriggerTimetable("0 1 * * *", "America/New_York", timedelta(hours=2)),
    ],
)
def test_dict_round_trip_is_exact_and_json_safe(tt: Timetable) -> None:
    data = timetable_to_dict(tt)
    assert json.loads(json.dumps(data)) == data
    back = timetable_from_dict(data)
    assert back == tt
    assert type(back) is type(tt)
    assert back.summary == tt.summary
    assert timetable_to_dict(back) == data


def test_unknown_dict_type_is_a_definition_error() -> None:
    with pytest.raises(DagDefinitionError, match="unknown timetable type"):
        timetable_from_dict({"type": "lunar"})
