"""Sensors: poke mode with injected sleep and clock, reschedule mode, timeouts."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from cluster.errors import DagDefinitionError, SensorTimeout, TaskRescheduled, TaskSkipped
from cluster.sdk import DAG, Connection, WeekDay
from cluster.sdk.taskrun import execute_task
from cluster.sdk.testing import InMemoryRuntime, make_context
from cluster.sensors.base import BaseSensorOperator, PokeReturnValue
from cluster.sensors.bash import BashSensor
from cluster.sensors.date_time import DateTimeSensor
from cluster.sensors.filesystem import FileSensor
from cluster.sensors.python import PythonSensor
from cluster.sensors.time_delta import TimeDeltaSensor
from cluster.sensors.time_sensor import TimeSensor
from cluster.sensors.weekday import DayOfWeekSensor
from tests.clocks import START, FakeClock


def wire(sensor: BaseSensorOperator, clock: FakeClock) -> BaseSensorOperator:
    sensor._sleep = clock.sleep
    sensor._clock = clock
    return sensor


def counting(done_on: int) -> Any:
    calls: list[int] = []

    def poke() -> bool:
        calls.append(1)
        return len(calls) >= done_on

    return poke


def python_sensor(done_on: int, clock: FakeClock, **kwargs: Any) -> BaseSensorOperator:
    with DAG("d"):
        sensor = PythonSensor(task_id="s", python_callable=counting(done_on), **kwargs)
    return wire(sensor, clock)


def run(sensor: BaseSensorOperator, logical: datetime = START, **ti: Any) -> Any:
    context = make_context(sensor, logical_date=logical)
    for key, value in ti.items():
        setattr(context["ti"], key, value)
    return execute_task(sensor, context)


def test_poke_mode_counts_pokes() -> None:
    clock = FakeClock()
    assert run(python_sensor(3, clock, poke_interval=5)) is None
    assert clock.sleeps == [5.0, 5.0]


def test_exponential_backoff_is_capped_by_max_wait() -> None:
    clock = FakeClock()
    run(python_sensor(5, clock, poke_interval=1, exponential_backoff=True, max_wait=3))
    assert clock.sleeps == [1.0, 2.0, 3.0, 3.0]


def test_poke_return_value_is_the_xcom() -> None:
    with DAG("d"):
        sensor = PythonSensor(task_id="s", python_callable=lambda: PokeReturnValue(True, {"k": 1}))
    context = make_context(sensor)
    assert execute_task(sensor, context) == {"k": 1}
    assert context["ti"].xcom_pull(task_ids="s") == {"k": 1}


def test_timeout_fails_and_soft_fail_skips() -> None:
    clock = FakeClock()
    with pytest.raises(SensorTimeout):
        run(python_sensor(100, clock, poke_interval=10, timeout=25))
    assert clock.sleeps == [10.0, 10.0, 10.0]
    with pytest.raises(TaskSkipped):
        run(python_sensor(100, FakeClock(), poke_interval=10, timeout=25, soft_fail=True))


def test_reschedule_mode_pokes_once_and_reschedules() -> None:
    clock = FakeClock()
    sensor = python_sensor(2, clock, poke_interval=30, mode="reschedule")
    with pytest.raises(TaskRescheduled) as info:
        run(sensor)
    assert info.value.reschedule_date == START + timedelta(seconds=30)
    assert clock.sleeps == []
    assert run(sensor) is None


def test_reschedule_timeout_counts_from_the_first_poke() -> None:
    clock = FakeClock(START + timedelta(seconds=100))
    sensor = python_sensor(100, clock, poke_interval=30, timeout=60, mode="reschedule")
    with pytest.raises(SensorTimeout):
        run(sensor, sensor_started_at=START)
    with pytest.raises(TaskRescheduled):
        run(sensor, sensor_started_at=START + timedelta(seconds=90))


def test_invalid_mode() -> None:
    with pytest.raises(DagDefinitionError, match="mode must be one of"), DAG("d"):
        PythonSensor(task_id="s", python_callable=lambda: True, mode="sometimes")


def test_time_delta_sensor_waits_after_data_interval_end() -> None:
    clock = FakeClock()
    with DAG("d"):
        sensor = wire(
            TimeDeltaSensor(task_id="s", delta=timedelta(seconds=20), poke_interval=10), clock
        )
    run(sensor)
    assert clock.sleeps == [10.0, 10.0]


def test_date_time_sensor_renders_its_target() -> None:
    clock = FakeClock()
    with DAG("d"):
        sensor = DateTimeSensor(
            task_id="s",
            target_time="{{ logical_date + macros.timedelta(seconds=15) }}",
            poke_interval=10,
        )
    run(wire(sensor, clock))
    assert clock.sleeps == [10.0, 10.0]


def test_time_sensor_uses_the_dag_timezone() -> None:
    clock = FakeClock(datetime(2024, 1, 1, 8, 30, tzinfo=UTC))  # 09:30 in Amsterdam
    with DAG("d", start_date=datetime(2024, 1, 1, tzinfo=ZoneInfo("Europe/Amsterdam"))):
        sensor = wire(TimeSensor(task_id="s", target_time=time(10, 0), poke_interval=1800), clock)
    run(sensor)
    assert clock.sleeps == [1800.0, 1800.0]  # strictly after 10:00, like Airflow


def test_day_of_week_sensor() -> None:
    with DAG("d"):
        today = DayOfWeekSensor(task_id="a", week_day=WeekDay.MONDAY)
        logical = DayOfWeekSensor(
            task_id="b", week_day={"Tuesday"}, use_task_logical_date=True, mode="reschedule"
        )
    wire(today, FakeClock())
    wire(logical, FakeClock())
    assert run(today) is None
    assert run(logical, logical=START + timedelta(days=1)) is None
    with pytest.raises(TaskRescheduled):
        run(logical, logical=START)
    with pytest.raises(AttributeError):
        WeekDay.get_weekday_number("Someday")


def test_file_sensor_globs_and_folders(tmp_path: Path) -> None:
    (tmp_path / "deep" / "er").mkdir(parents=True)
    with DAG("d"):
        by_glob = FileSensor(task_id="a", filepath=str(tmp_path / "*.csv"), mode="reschedule")
        recursive = FileSensor(task_id="b", filepath=str(tmp_path / "**" / "x.txt"), recursive=True)
        folder = FileSensor(task_id="c", filepath=str(tmp_path / "deep"))
    with pytest.raises(TaskRescheduled):
        run(by_glob)
    (tmp_path / "data.csv").write_text("1")
    (tmp_path / "deep" / "er" / "x.txt").write_text("1")
    assert run(by_glob) is None and run(recursive) is None and run(folder) is None


def test_file_sensor_uses_the_connection_path(tmp_path: Path, runtime: InMemoryRuntime) -> None:
    (tmp_path / "ready").write_text("")
    runtime.connections["fs_here"] = Connection("fs_here", "fs", extra={"path": str(tmp_path)})
    with DAG("d"):
        sensor = FileSensor(task_id="s", filepath="ready", fs_conn_id="fs_here", mode="reschedule")
    assert run(sensor) is None


def test_bash_sensor(tmp_path: Path) -> None:
    flag = tmp_path / "flag"
    with DAG("d"):
        sensor = BashSensor(task_id="s", bash_command=f"test -f {flag}", mode="reschedule")
    with pytest.raises(TaskRescheduled):
        run(sensor)
    flag.write_text("")
    assert run(sensor) is None
