"""Which runs to create and start, and which ran out of time."""

from __future__ import annotations

from datetime import timedelta

from policy_dags import make_dag, utc

from cluster.policy import (
    RunSnapshot,
    plan_runs,
    runs_to_start,
    scheduled_run_id,
    timed_out_runs,
    timeout_changes,
)
from cluster.sdk.timetables import DataInterval
from cluster.states import DagRunState, TaskState

NOW = utc(2024, 1, 5, 12)


def test_catchup_creates_every_due_interval_up_to_max_active_runs() -> None:
    dag = make_dag(
        tasks=["a"], schedule="@daily", start_date=utc(2024, 1, 1), catchup=True, max_active_runs=3
    )
    plan = plan_runs(dag, paused=False, last_automated_data_interval=None, active_runs=0, now=NOW)
    assert [r.logical_date for r in plan.create] == [
        utc(2024, 1, 1),
        utc(2024, 1, 2),
        utc(2024, 1, 3),
    ]
    assert plan.create[0].run_id == "scheduled__2024-01-01T00:00:00+00:00"
    assert plan.create[0].data_interval_end == utc(2024, 1, 2)
    assert plan.next_dagrun_create_after is None  # at max_active_runs: re-plan when a run ends
    assert plan.next_run is not None and plan.next_run.logical_date == utc(2024, 1, 4)


def test_catchup_resumes_after_the_last_automated_interval() -> None:
    dag = make_dag(tasks=["a"], schedule="@daily", start_date=utc(2024, 1, 1), catchup=True)
    last = DataInterval(utc(2024, 1, 3), utc(2024, 1, 4))
    plan = plan_runs(dag, paused=False, last_automated_data_interval=last, active_runs=1, now=NOW)
    assert [r.logical_date for r in plan.create] == [utc(2024, 1, 4)]
    assert plan.next_dagrun_create_after == utc(2024, 1, 6)


def test_without_catchup_only_the_latest_interval_is_created() -> None:
    dag = make_dag(tasks=["a"], schedule="@daily", start_date=utc(2024, 1, 1), catchup=False)
    plan = plan_runs(dag, paused=False, last_automated_data_interval=None, active_runs=0, now=NOW)
    assert [r.logical_date for r in plan.create] == [utc(2024, 1, 4)]
    assert plan.next_dagrun_create_after == utc(2024, 1, 6)


def test_paused_dags_create_nothing() -> None:
    dag = make_dag(tasks=["a"], schedule="@daily", start_date=utc(2024, 1, 1))
    plan = plan_runs(dag, paused=True, last_automated_data_interval=None, active_runs=0, now=NOW)
    assert plan.create == () and plan.next_dagrun_create_after is None


def test_nothing_before_the_start_date_or_after_the_end_date() -> None:
    future = make_dag(tasks=["a"], schedule="@daily", start_date=utc(2024, 2, 1))
    plan = plan_runs(
        future, paused=False, last_automated_data_interval=None, active_runs=0, now=NOW
    )
    assert plan.create == () and plan.next_dagrun_create_after == utc(2024, 2, 2)
    ended = make_dag(
        tasks=["a"],
        schedule="@daily",
        start_date=utc(2024, 1, 1),
        end_date=utc(2024, 1, 2),
        catchup=True,
    )
    plan = plan_runs(ended, paused=False, last_automated_data_interval=None, active_runs=0, now=NOW)
    assert [r.logical_date for r in plan.create] == [utc(2024, 1, 1), utc(2024, 1, 2)]
    assert plan.next_dagrun_create_after is None and plan.next_run is None


def test_once_is_created_once() -> None:
    dag = make_dag(tasks=["a"], schedule="@once", start_date=utc(2024, 1, 1))
    first = plan_runs(dag, paused=False, last_automated_data_interval=None, active_runs=0, now=NOW)
    assert [r.logical_date for r in first.create] == [utc(2024, 1, 1)]
    done = DataInterval(utc(2024, 1, 1), utc(2024, 1, 1))
    again = plan_runs(dag, paused=False, last_automated_data_interval=done, active_runs=0, now=NOW)
    assert again.create == () and again.next_dagrun_create_after is None


def test_unscheduled_dags_create_nothing() -> None:
    dag = make_dag(tasks=["a"], schedule=None, start_date=utc(2024, 1, 1))
    plan = plan_runs(dag, paused=False, last_automated_data_interval=None, active_runs=0, now=NOW)
    assert plan == plan.__class__((), None, None)


def test_continuous_allows_one_active_run() -> None:
    dag = make_dag(tasks=["a"], schedule="@continuous", start_date=utc(2024, 1, 1))
    busy = plan_runs(dag, paused=False, last_automated_data_interval=None, active_runs=1, now=NOW)
    assert busy.create == ()
    idle = plan_runs(dag, paused=False, last_automated_data_interval=None, active_runs=0, now=NOW)
    assert len(idle.create) == 1


def test_delta_schedule_run_ids_use_the_logical_date() -> None:
    dag = make_dag(
        tasks=["a"], schedule=timedelta(hours=12), start_date=utc(2024, 1, 4), catchup=True
    )
    plan = plan_runs(dag, paused=False, last_automated_data_interval=None, active_runs=0, now=NOW)
    expected = [utc(2024, 1, 4), utc(2024, 1, 4, 12), utc(2024, 1, 5)]  # the last ends at NOW
    assert [r.run_id for r in plan.create] == [scheduled_run_id(d) for d in expected]


def test_queued_runs_start_oldest_first_within_max_active_runs() -> None:
    dag = make_dag(tasks=["a"], max_active_runs=2)
    runs = [
        RunSnapshot("r3", DagRunState.QUEUED, utc(2024, 1, 3)),
        RunSnapshot("r1", DagRunState.RUNNING, utc(2024, 1, 1)),
        RunSnapshot("r2", DagRunState.QUEUED, utc(2024, 1, 2)),
    ]
    assert runs_to_start(dag, runs) == ["r2"]
    assert runs_to_start(dag, runs[::2]) == ["r2", "r3"]


def test_runs_past_their_timeout_fail_and_their_unfinished_tasks_are_skipped() -> None:
    dag = make_dag(tasks=["a"], dagrun_timeout=3600.0)
    runs = [
        RunSnapshot("old", DagRunState.RUNNING, None, start_date=NOW - timedelta(hours=2)),
        RunSnapshot("new", DagRunState.RUNNING, None, start_date=NOW - timedelta(minutes=5)),
        RunSnapshot("queued", DagRunState.QUEUED, None),
    ]
    assert timed_out_runs(dag, runs, now=NOW) == ["old"]
    assert timed_out_runs(make_dag(tasks=["a"]), runs, now=NOW) == []
    changes = timeout_changes({"a": TaskState.SUCCESS, "b": TaskState.RUNNING, "c": TaskState.NONE})
    assert [(c.task_id, c.source, c.target) for c in changes] == [
        ("b", TaskState.RUNNING, TaskState.SKIPPED),
        ("c", TaskState.NONE, TaskState.SKIPPED),
    ]
