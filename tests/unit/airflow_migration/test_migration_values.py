"""How Airflow's stored values become Tradewind's: URLs, pickled run confs, XComs, tries."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime, timedelta, timezone

import pytest

from cluster.airflow_migration.history import instance_row, try_rows
from cluster.airflow_migration.source import json_text, load_conf, source_url, utc
from cluster.errors import UsageError

T0 = datetime(2026, 12, 4, tzinfo=UTC)


@pytest.mark.parametrize(
    ("given", "driver"),
    [
        ("mysql+mysqldb://u:p@db/airflow", "mysql+pymysql"),
        ("mysql://u:p@db/airflow", "mysql+pymysql"),
        ("postgresql+psycopg2://u:p@db/airflow", "postgresql+psycopg"),
        ("postgres://u:p@db/airflow", "postgresql+psycopg"),
    ],
)
def test_airflow_urls_get_tradewinds_drivers(given: str, driver: str) -> None:
    url = source_url(given)
    assert (url.drivername, url.database, url.password) == (driver, "airflow", "p")


@pytest.mark.parametrize("given", ["sqlite:////tmp/airflow.db", "not a url"])
def test_other_databases_are_refused_in_one_line(given: str) -> None:
    with pytest.raises(UsageError, match="SOURCE_URL"):
        source_url(given)


def test_a_pickled_conf_is_read_as_plain_data_only() -> None:
    assert load_conf(pickle.dumps({"a": [1, "x"], "b": None})) == {"a": [1, "x"], "b": None}
    assert load_conf(b'{"a": 1}') == {"a": 1}  # JSON, as some forks store it
    # a class in the pickle (here a datetime; it could be os.system) is never built
    assert load_conf(pickle.dumps({"when": T0})) is None
    assert load_conf(None) is None


def test_xcom_values_are_kept_when_they_are_json() -> None:
    assert json_text(b'{"sum": 14}') == '{"sum": 14}'
    assert json_text(memoryview(b"[1, 2]")) == "[1, 2]"
    assert json_text(pickle.dumps([1, 2])) is None


def test_times_are_aware_utc() -> None:
    assert utc(datetime(2026, 12, 4)) == T0
    assert utc(datetime(2026, 12, 4, 1, tzinfo=timezone(timedelta(hours=1)))) == T0
    assert utc(None) is None


def _ti(state: str | None, try_number: int, **extra: object) -> dict[str, object]:
    row: dict[str, object] = {
        "dag_id": "d", "run_id": "r", "task_id": "t", "map_index": -1, "state": state,
        "try_number": try_number, "max_tries": 2, "pool": "default_pool",
        "start_date": T0, "end_date": T0 + timedelta(seconds=3), "duration": 3.0,
    }  # fmt: skip
    row.update(extra)
    return row


def test_every_try_is_in_the_history_with_the_current_one() -> None:
    instance = _ti("success", 2)
    earlier = [_ti("up_for_retry", 1)]
    tries = try_rows([instance], earlier, [])
    assert [(t["try_number"], t["state"]) for t in tries] == [(1, "up_for_retry"), (2, "success")]


def test_before_airflow_2_10_failed_tries_come_from_task_fail() -> None:
    fails = [_ti(None, 0, start_date=T0 + timedelta(minutes=m)) for m in (5, 0)]
    tries = try_rows([_ti("failed", 3)], None, fails)
    assert [(t["try_number"], t["state"]) for t in tries] == [
        (1, "failed"), (2, "failed"), (3, "failed")
    ]  # fmt: skip
    assert tries[0]["start_date"] == T0


def test_an_instance_that_never_ran_has_no_try() -> None:
    assert try_rows([_ti("upstream_failed", 0, start_date=None)], [], []) == []


@pytest.mark.parametrize("state", ["running", "queued", "scheduled", "deferred", "restarting"])
def test_unfinished_instances_are_run_again(state: str) -> None:
    row = instance_row(_ti(state, 1), None)
    assert row["state"] == "none" and row["try_number"] == 1


def test_a_retry_is_due_at_once() -> None:
    row = instance_row(_ti("up_for_retry", 1), "a note")
    assert (row["state"], row["next_try_at"], row["note"]) == (
        "up_for_retry", T0 + timedelta(seconds=3), "a note"
    )  # fmt: skip
