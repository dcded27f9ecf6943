"""Sensors in poke and reschedule mode, with tiny intervals so a run takes seconds.

Poke counters live in files under the temp folder keyed by run id, so they survive
the separate processes a reschedule-mode sensor runs in.
"""

from __future__ import annotations

import os
import re
import tempfile
from datetime import timedelta

import pendulum

from cluster.sdk import DAG, WeekDay, task
from cluster.sensors.base import PokeReturnValue
from cluster.sensors.bash import BashSensor
from cluster.sensors.date_time import DateTimeSensor
from cluster.sensors.filesystem import FileSensor
from cluster.sensors.python import PythonSensor
from cluster.sensors.time_delta import TimeDeltaSensor
from cluster.sensors.weekday import DayOfWeekSensor


def _marker(run_id: str, name: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", run_id)
    return os.path.join(tempfile.gettempdir(), f"tradewind_example_sensors_{safe}_{name}")


def count_pokes(run_id: str, name: str) -> int:
    """Add one to a per-run counter file and return the new count."""
    path = _marker(run_id, name)
    count = 1
    if os.path.exists(path):
        with open(path) as fh:
            count = int(fh.read()) + 1
    with open(path, "w") as fh:
        fh.write(str(count))
    return count


def third_poke(key: str, name: str) -> bool:
    """Done on the third poke (``key`` is the run id; ``run_id`` is a context key)."""
    return count_pokes(key, name) >= 3


with DAG(
    "example_sensors",
    schedule=None,
    start_date=pendulum.datetime(2021, 1, 1, tz="UTC"),
    catchup=False,
    default_args={"timeout": 60},
    tags=["example", "sensors"],
) as dag:
    poke_python = PythonSensor(
        task_id="poke_python",
        python_callable=third_poke,
        op_args=["{{ run_id }}", "poke"],
        poke_interval=0.1,
        mode="poke",
    )
    reschedule_python = PythonSensor(
        task_id="reschedule_python",
        python_callable=third_poke,
        op_args=["{{ run_id }}", "reschedule"],
        poke_interval=1,
        mode="reschedule",
    )
    wait_zero = TimeDeltaSensor(task_id="wait_zero", delta=timedelta(seconds=0), poke_interval=0.1)
    wait_until_interval_end = DateTimeSensor(
        task_id="wait_until_interval_end",
        target_time="{{ data_interval_end }}",
        poke_interval=0.1,
    )
    any_day = DayOfWeekSensor(task_id="any_day", week_day=set(WeekDay), poke_interval=0.1)

    @task
    def make_file(run_id=None) -> str:
        path = _marker(run_id, "file")
        with open(path, "w") as fh:
            fh.write("ready\n")
        return path

    path = make_file()
    file_exists = FileSensor(task_id="file_exists", filepath=path, poke_interval=0.1)
    bash_check = BashSensor(
        task_id="bash_check",
        bash_command="test -f \"{{ ti.xcom_pull(task_ids='make_file') }}\"",
        poke_interval=0.1,
    )

    @task.sensor(poke_interval=0.1, mode="poke")
    def decorated_sensor(run_id=None) -> PokeReturnValue:
        return PokeReturnValue(is_done=count_pokes(run_id, "decorated") >= 2, xcom_value="found")

    @task
    def done(value: str) -> None:
        if value != "found":
            raise ValueError(f"sensor pushed {value!r}")

    [poke_python, reschedule_python, wait_zero, wait_until_interval_end, any_day] >> path
    path >> [file_exists, bash_check]
    [file_exists, bash_check] >> done(decorated_sensor())
