"""Airflow 2.10.5's ``example_sensors``, imports swapped, run in-process as ``dags test``
runs its tasks (triggers inline), to the states a real Airflow recorded (``runs.json``'s
``dags_test``); ``example_time_delta_sensor_async`` is compared whole with every other
example in test_airflow_example_runs.py.

Airflow's own ``dags test`` of ``example_sensors`` never finished (its
``TimeSensorAsync`` waits an hour for a target an hour after parsing, its sensor
``timeout`` not applying while deferred, and the fixture stopped it at 300 s), so the
comparison there is every task Airflow had finished, run the same way, plus its other
deferring sensor, which Airflow had not reached: it succeeds through its trigger.

Its ``TimeSensor`` waits for the time of day an hour after parsing; parsed between
23:00 and midnight UTC, that time of day has already passed (as on Airflow, whose
sensor compares times of day) and it would succeed where Airflow's run timed out. So
the example is parsed as if at 22:30 at the latest: its async sensors, whose triggers
wait in real time for a target set at parsing, still find it passed.
"""

from __future__ import annotations

import contextlib
import datetime as datetime_module
import importlib.util
import json
import pathlib
import sys
import types
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from cluster.dagfiles.serialize import serialize_dag
from cluster.execution import inprocess
from cluster.sdk import DAG
from cluster.sdk.dagcontext import capture_dags
from cluster.sdk.runtime import set_runtime
from cluster.sdk.testing import InMemoryRuntime
from tests.airflow_compat import rewrite_tree
from tests.clocks import FakeClock

FIXTURES = pathlib.Path(__file__).parents[2] / "fixtures" / "airflow"
RUNS = json.loads((FIXTURES / "runs.json").read_text())
WHEN = datetime.fromisoformat(RUNS["logical_date"])
FINISHED = ("success", "failed", "skipped", "upstream_failed")
#: when the example is parsed: now, or 22:30 today if that is earlier (see above)
PARSED = min(datetime.now(UTC), datetime.now(UTC).replace(hour=22, minute=30))


@pytest.fixture(scope="module")
def rewritten(tmp_path_factory: pytest.TempPathFactory) -> Iterator[pathlib.Path]:
    target = tmp_path_factory.mktemp("deferral_examples")
    rewrite_tree(FIXTURES / "example_dags", target)
    sys.path.insert(0, str(target))
    set_runtime(InMemoryRuntime())
    yield target
    set_runtime(None)
    sys.path.remove(str(target))


@contextlib.contextmanager
def parsed_at(now: datetime) -> Iterator[None]:
    """A module imported meanwhile that does ``import datetime`` reads ``now`` as the time."""

    class Frozen(datetime):
        @classmethod
        def now(cls, tz: datetime_module.tzinfo | None = None) -> datetime:  # type: ignore[override]
            return now.astimezone(tz) if tz is not None else now.replace(tzinfo=None)

    shim = types.ModuleType("datetime")
    shim.__dict__.update(vars(datetime_module))
    shim.datetime = Frozen  # type: ignore[attr-defined]
    real = sys.modules["datetime"]
    sys.modules["datetime"] = shim
    try:
        yield
    finally:
        sys.modules["datetime"] = real


def load(folder: pathlib.Path, name: str, dag_id: str) -> DAG:
    spec = importlib.util.spec_from_file_location(f"ex_{uuid.uuid4().hex}", folder / name)
    assert spec is not None and spec.loader is not None
    with capture_dags() as dags, parsed_at(PARSED):
        spec.loader.exec_module(importlib.util.module_from_spec(spec))
    (dag,) = [d for d in dags if d.dag_id == dag_id]
    return dag


def test_sensors_example_tasks_end_as_on_airflow(rewritten: pathlib.Path) -> None:
    observed = RUNS["dags_test"]["example_sensors"]["observed"]
    airflow_finished = {t: s for t, _, s in observed["task_instances"] if s in FINISHED}
    assert "fire_immediately_async" in airflow_finished  # a deferring task Airflow finished
    dag = load(rewritten, "example_sensors.py", "example_sensors")
    clock = FakeClock(PARSED)
    for task in dag.tasks:
        if hasattr(task, "_sleep"):  # poke-mode waits pass on a fake clock, not for a minute
            task._sleep, task._clock = clock.sleep, clock
    run = inprocess.manual_run_info(serialize_dag(dag), WHEN, None)
    store: inprocess.Store = {}
    ours = {
        task_id: str(inprocess.run_task(dag, task_id, run, store, test_mode=False).state)
        for task_id in [*airflow_finished, "wait_some_seconds_async"]
    }
    assert ours == {**airflow_finished, "wait_some_seconds_async": "success"}
