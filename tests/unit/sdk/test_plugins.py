"""Plugins from the plugins folder: timetables a DAG schedules with, found again by
the scheduler from the serialized DAG alone, and macros in templates; plus Airflow's
timetables under their names."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pendulum
import pytest

from cluster.dagfiles.importer import import_file
from cluster.dagfiles.serialized import SerializedDag
from cluster.errors import DagDefinitionError, PluginError
from cluster.sdk import (
    DAG,
    AirflowPlugin,
    CronTriggerTimetable,
    DataInterval,
    EventsTimetable,
    TimeRestriction,
    Timetable,
)
from cluster.sdk.macros import build_macros
from cluster.sdk.plugins import REGISTRY, Plugins, load_plugins
from cluster.sdk.timetables import timetable_from_dict, timetable_to_dict

REPO = Path(__file__).resolve().parents[3]

#: Airflow's documented shape of a timetable plugin (its next_dagrun_info takes no ``now``)
EVERY_OTHER_DAY = """
from datetime import timedelta
from cluster.sdk import AirflowPlugin, DagRunInfo, DataInterval, Timetable

class EveryOtherDay(Timetable):
    def __init__(self, hour=0):
        self.hour = hour

    def serialize(self):
        return {"hour": self.hour}

    @classmethod
    def deserialize(cls, data):
        return cls(data["hour"])

    @property
    def summary(self):
        return f"every other day at {self.hour}h"

    def infer_manual_data_interval(self, run_after):
        return DataInterval(run_after - timedelta(days=2), run_after)

    def next_dagrun_info(self, *, last_automated_data_interval, restriction):
        if last_automated_data_interval is None:
            start = restriction.earliest.replace(hour=self.hour)
        else:
            start = last_automated_data_interval.end
        return DagRunInfo.interval(start, start + timedelta(days=2))

def shout(text):
    return text.upper() + "!"

class OtherDayPlugin(AirflowPlugin):
    name = "other_day"
    timetables = [EveryOtherDay]
    macros = [shout]
"""

DAG_FILE = """
from datetime import datetime, timezone
from cluster.sdk import DAG
from cluster.operators.empty import EmptyOperator
from other_day import EveryOtherDay

with DAG("uses_plugin", start_date=datetime(2024, 1, 1, tzinfo=timezone.utc),
         schedule=EveryOtherDay(hour=6)):
    EmptyOperator(task_id="t")
"""


@pytest.fixture
def plugins_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "other_day.py").write_text(EVERY_OTHER_DAY)
    (folder / "broken.py").write_text("raise RuntimeError('boom')\n")
    return folder


def test_plugins_register_timetables_and_macros_and_report_broken_files(
    plugins_folder: Path,
) -> None:
    registry = load_plugins(plugins_folder, registry=Plugins())
    assert list(registry.plugins) == ["other_day"]
    assert list(registry.timetables) == ["other_day.EveryOtherDay"]
    assert registry.macros["other_day"].shout("hi") == "HI!"
    assert "RuntimeError: boom" in registry.errors[str(plugins_folder / "broken.py")]


def test_a_plugin_needs_a_name() -> None:
    class Nameless(AirflowPlugin):
        pass

    with pytest.raises(PluginError, match="needs a name"):
        Plugins().register(Nameless)


def test_plugin_macros_are_in_templates(plugins_folder: Path) -> None:
    load_plugins(plugins_folder)  # this process's registry, as a worker would
    assert "other_day" in REGISTRY.plugins
    assert build_macros().other_day.shout("ok") == "OK!"


def test_a_dag_on_a_plugin_timetable_is_scheduled_from_its_serialized_form(
    plugins_folder: Path, tmp_path: Path
) -> None:
    """The DAG file is imported in a child; a fresh process that only loads the plugins
    folder (as the scheduler does) computes the runs from the serialized JSON."""
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "uses_plugin.py").write_text(DAG_FILE)
    load_plugins(plugins_folder)
    result = import_file(dags / "uses_plugin.py", timeout=30)
    assert result.error is None, result.error
    serialized = SerializedDag.from_json(result.dags["uses_plugin"])
    assert serialized.timetable == {
        "type": "custom",
        "class": "other_day.EveryOtherDay",
        "data": {"hour": 6},
    }
    assert serialized.schedule == "every other day at 6h"
    code = textwrap.dedent(f"""
        import json, sys
        from datetime import datetime, timezone
        from cluster.sdk.plugins import load_plugins
        from cluster.sdk.timetables import TimeRestriction, timetable_from_dict
        load_plugins(__import__("pathlib").Path({str(plugins_folder)!r}))
        tt = timetable_from_dict(json.loads(sys.argv[1]))
        start = datetime(2024, 1, 1, tzinfo=timezone.utc)
        first = tt.next_dagrun_info(last_automated_data_interval=None,
            restriction=TimeRestriction(start, None, True), now=datetime.now(timezone.utc))
        second = tt.next_dagrun_info(last_automated_data_interval=first.data_interval,
            restriction=TimeRestriction(start, None, True), now=None)
        print(json.dumps([first.logical_date.isoformat(), second.run_after.isoformat()]))
    """)
    out = subprocess.run(
        [sys.executable, "-c", code, json.dumps(serialized.timetable)],
        capture_output=True, text=True, check=True, cwd=REPO,
    )  # fmt: skip
    assert json.loads(out.stdout) == ["2024-01-01T06:00:00+00:00", "2024-01-05T06:00:00+00:00"]


def test_an_unknown_timetable_class_is_a_clear_error_of_that_dag() -> None:
    with pytest.raises(DagDefinitionError, match="plugins folder"):
        timetable_from_dict({"type": "custom", "class": "nowhere_module.Nothing", "data": {}})


def test_events_timetable_runs_at_each_event_and_round_trips() -> None:
    events = [pendulum.datetime(2024, 3, 5, tz="UTC"), datetime(2024, 3, 1, 12, tzinfo=UTC)]
    tt = EventsTimetable(events, restrict_to_events=True)
    restriction = TimeRestriction(datetime(2024, 1, 1, tzinfo=UTC), None, True)
    first = tt.next_dagrun_info(last_automated_data_interval=None, restriction=restriction)
    assert first is not None and first.logical_date == datetime(2024, 3, 1, 12, tzinfo=UTC)
    second = tt.next_dagrun_info(
        last_automated_data_interval=first.data_interval, restriction=restriction
    )
    assert second is not None and second.run_after == datetime(2024, 3, 5, tzinfo=UTC)
    assert (
        tt.next_dagrun_info(
            last_automated_data_interval=second.data_interval, restriction=restriction
        )
        is None
    )
    assert tt.summary == "2 events"
    manual = tt.infer_manual_data_interval(run_after=datetime(2024, 3, 4, tzinfo=UTC))
    assert manual == DataInterval.exact(datetime(2024, 3, 1, 12, tzinfo=UTC))
    assert timetable_from_dict(json.loads(json.dumps(timetable_to_dict(tt)))) == tt


def test_events_timetable_without_catchup_starts_from_now() -> None:
    tt = EventsTimetable([datetime(2024, 1, d, tzinfo=UTC) for d in (1, 10, 20)])
    restriction = TimeRestriction(datetime(2024, 1, 1, tzinfo=UTC), None, False)
    info = tt.next_dagrun_info(
        last_automated_data_interval=None,
        restriction=restriction,
        now=datetime(2024, 1, 5, tzinfo=UTC),
    )
    assert info is not None and info.logical_date == datetime(2024, 1, 10, tzinfo=UTC)


def test_cron_trigger_timetable_takes_a_pendulum_timezone_as_airflow() -> None:
    with DAG(
        "d", schedule=CronTriggerTimetable("0 1 * * 3", timezone=pendulum.timezone("Europe/Paris"))
    ) as dag:
        pass
    assert timetable_to_dict(dag.timetable)["timezone"] == "Europe/Paris"
    with DAG(
        "e", schedule=CronTriggerTimetable("0 1 * * 3", timezone="UTC", interval=timedelta(hours=1))
    ) as other:
        pass
    assert other.timetable.infer_manual_data_interval(
        datetime(2024, 1, 3, 1, tzinfo=UTC)
    ).start == datetime(2024, 1, 3, 0, tzinfo=UTC)


def test_a_timetable_that_fails_its_own_validation_is_a_definition_error() -> None:
    class Picky(Timetable):
        def validate(self) -> None:
            raise ValueError("hour must be below 24")

    with pytest.raises(DagDefinitionError, match="hour must be below 24"):
        DAG("picky", schedule=Picky())
