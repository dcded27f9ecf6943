"""Which consumer gets a dataset-triggered run: Airflow 2.10's rules, with no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cluster.dagfiles.serialize import serialize_dag
from cluster.operators.empty import EmptyOperator
from cluster.policy.datasets import condition_of, plan_dataset_run, readiness, watched_uris
from cluster.policy.runs import plan_runs
from cluster.sdk import DAG, CronTriggerTimetable, Dataset, DatasetOrTimeSchedule

T0 = datetime(2026, 1, 1, tzinfo=UTC)
A, B, C = {"uri": "s3://x/a"}, {"uri": "s3://x/b"}, {"uri": "s3://x/c"}


def test_a_run_when_the_condition_holds_at_the_latest_queue_time() -> None:
    both = {"all": [A, B]}
    assert plan_dataset_run("d", both, {"s3://x/a": T0}, {}) is None
    run = plan_dataset_run("d", both, {"s3://x/a": T0, "s3://x/b": T0 + timedelta(minutes=5)}, {})
    assert run is not None
    assert run.logical_date == T0 + timedelta(minutes=5)
    assert run.run_id == f"dataset_triggered__{(T0 + timedelta(minutes=5)).isoformat()}"


def test_nested_any_of_all() -> None:
    cond = {"any": [A, {"all": [B, C]}]}
    assert plan_dataset_run("d", cond, {"s3://x/b": T0}, {}) is None
    assert plan_dataset_run("d", cond, {"s3://x/b": T0, "s3://x/c": T0}, {}) is not None
    assert plan_dataset_run("d", cond, {}, {}) is None


def test_alias_waits_on_what_it_resolved_to() -> None:
    cond = {"all": [{"alias": "al"}]}
    assert plan_dataset_run("d", cond, {"s3://x/a": T0}, {}) is None
    assert plan_dataset_run("d", cond, {"s3://x/a": T0}, {"al": ["s3://x/a"]}) is not None
    assert watched_uris({"all": [B, {"alias": "al"}]}, {"al": ["s3://x/a"]}) == [
        "s3://x/b",
        "s3://x/a",
    ]


def test_readiness_counts_for_the_dags_page() -> None:
    assert readiness({"all": [A, B, C]}, ["s3://x/a", "s3://x/c"], {}) == (2, 3)


def test_only_dataset_timetables_have_a_condition() -> None:
    assert condition_of({"type": "cron", "expression": "@daily"}) is None
    assert condition_of({"type": "datasets", "condition": {"all": [A]}}) == {"all": [A]}
    assert condition_of({"type": "datasets_or_time", "condition": A, "timetable": {}}) == A


def test_dataset_or_time_schedule_still_runs_on_its_clock() -> None:
    with DAG(
        "both",
        start_date=datetime(2026, 1, 1, tzinfo=UTC),
        schedule=DatasetOrTimeSchedule(
            timetable=CronTriggerTimetable("0 1 * * 3", timezone="UTC"),
            datasets=Dataset("s3://x/a") | Dataset("s3://x/b"),
        ),
    ) as dag:
        EmptyOperator(task_id="t")
    wednesday = datetime(2026, 1, 7, 1, 0, 30, tzinfo=UTC)
    plan = plan_runs(
        serialize_dag(dag), paused=False, last_automated_data_interval=None, active_runs=0,
        now=wednesday,
    )  # fmt: skip
    assert [r.logical_date for r in plan.create] == [datetime(2026, 1, 7, 1, 0, tzinfo=UTC)]


def test_a_dataset_only_schedule_creates_no_timed_run() -> None:
    with DAG(
        "only", start_date=datetime(2026, 1, 1, tzinfo=UTC), schedule=[Dataset("s3://x/a")]
    ) as dag:
        EmptyOperator(task_id="t")
    plan = plan_runs(
        serialize_dag(dag), paused=False, last_automated_data_interval=None, active_runs=0,
        now=datetime(2026, 6, 1, tzinfo=UTC),
    )  # fmt: skip
    assert plan.create == () and plan.next_dagrun_create_after is None
