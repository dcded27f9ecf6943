"""``tradewind migrate-from-airflow`` on metastores a real Airflow 2.10.5 made.

The dumps in tests/fixtures/airflow/migration (made by ``make_metastore.py`` there: a
real scheduler on MariaDB and on PostgreSQL) are loaded into a fresh database on the
run's server and migrated into a Tradewind metastore on the same server. Every row is
compared with Airflow's, a second migration adds nothing, and the scheduler then gives
the daily DAG exactly its next run.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from cryptography.fernet import Fernet
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from cluster.airflow_migration.report import Report
from cluster.airflow_migration.run import Options, migrate
from cluster.airflow_migration.source import AirflowMetastore, load_conf, open_airflow, utc
from cluster.cli.main import cli
from cluster.config import Settings
from cluster.dagfiles.environment import prepare_user_code
from cluster.devcluster.services.postgres import PostgreSQL
from cluster.errors import UsageError
from cluster.metastore.connections import get_connection
from cluster.metastore.models import (
    Dag,
    DagRun,
    SlotPool,
    TaskInstance,
    TaskInstanceHistory,
    User,
    XCom,
)
from cluster.metastore.secrets import make_fernet
from cluster.metastore.users import authenticate
from cluster.metastore.variables import get_variable
from cluster.sdk import airflow_compat
from tests.clocks import FakeClock
from tests.databases import DatabaseServer
from tests.fixtures.airflow.migration.make_metastore import DAGS, FERNET_KEY, HERE
from tests.integration.scheduler_harness import InProcessScheduler

KINDS = [pytest.param("mariadb", marks=pytest.mark.mariadb),
         pytest.param("postgres", marks=pytest.mark.postgres)]  # fmt: skip


@pytest.fixture
def airflow_url(request: pytest.FixtureRequest, metastore_url: str) -> Iterator[str]:
    """A database loaded from Airflow's dump, on the server of the Tradewind metastore."""
    kind = "mariadb" if metastore_url.startswith("mysql") else "postgres"
    server: DatabaseServer = request.getfixturevalue(kind)
    name = f"af_{uuid.uuid4().hex[:12]}"
    url = server.create_database(name)
    dump = (HERE / f"airflow-{kind}.sql").read_text()
    if isinstance(server, PostgreSQL):
        grant = f'GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{server.user}";'
        server.execute(f"{dump}\n{grant}", database=name)
    else:
        server.execute(f"USE `{name}`;\n{dump}")
    yield url
    server.drop_database(name)


@pytest.fixture
def airflow(airflow_url: str) -> Iterator[AirflowMetastore]:
    with open_airflow(airflow_url) as source:
        yield source


def run_migration(
    airflow: AirflowMetastore, sessions: sessionmaker[Session], settings: Settings, **kw: Any
) -> Report:
    options = Options(make_fernet(FERNET_KEY), make_fernet(settings.core.fernet_key), **kw)
    return migrate(airflow, sessions, options)


def rows(sessions: sessionmaker[Session], model: type) -> list[Any]:
    with sessions() as session:
        return list(session.scalars(select(model)))


pytestmark = pytest.mark.parametrize("metastore_url", KINDS, indirect=True)


def test_a_dry_run_counts_and_writes_nothing(
    airflow: AirflowMetastore, session_factory: sessionmaker[Session], metastore_settings: Settings
) -> None:
    report = run_migration(airflow, session_factory, metastore_settings, dry_run=True)

    assert report["dag_runs"].added == airflow.count("dag_run") == 4
    assert report["task_instances"].added == airflow.count("task_instance")
    assert report["variables"].added == 3 and report["connections"].added == 2
    assert report["users"].added == 4 and report.reinvite == ["erin"]
    assert rows(session_factory, DagRun) == [] and rows(session_factory, TaskInstance) == []


def test_a_database_that_is_not_airflows_is_refused(metastore_engine: Any) -> None:
    # Tradewind's own metastore has dag, dag_run and task_instance too
    url = metastore_engine.url.render_as_string(hide_password=False)
    with pytest.raises(UsageError, match=r"not an Airflow 2\.x metastore"), open_airflow(url):
        pass


def test_everything_is_copied_row_by_row_and_twice_adds_nothing(
    airflow: AirflowMetastore, session_factory: sessionmaker[Session], metastore_settings: Settings
) -> None:
    first = run_migration(airflow, session_factory, metastore_settings, include_xcom=True)

    _same_runs(airflow, session_factory)
    _same_instances(airflow, session_factory)
    _same_tries(airflow, session_factory)
    _same_xcoms(airflow, session_factory)
    _same_definitions(session_factory, metastore_settings)
    assert first.reinvite == ["erin"]
    assert first["notes"].added == 2

    before = {m.__name__: len(rows(session_factory, m)) for m in (DagRun, TaskInstance,
              TaskInstanceHistory, XCom, User, SlotPool)}  # fmt: skip
    second = run_migration(airflow, session_factory, metastore_settings, include_xcom=True)
    after = {m.__name__: len(rows(session_factory, m)) for m in (DagRun, TaskInstance,
             TaskInstanceHistory, XCom, User, SlotPool)}  # fmt: skip
    assert after == before
    assert {t: c.added for t, c in second.counts.items() if c.added} == {}
    assert second["task_instances"].present == first["task_instances"].added


def _same_runs(airflow: AirflowMetastore, sessions: sessionmaker[Session]) -> None:
    notes = {n["dag_run_id"]: n["content"] for n in airflow.rows("dag_run_note")}
    ours = {(r.dag_id, r.run_id): r for r in rows(sessions, DagRun)}
    theirs = airflow.rows("dag_run")
    assert len(ours) == len(theirs) == 4
    for run in theirs:
        mine = ours[(run["dag_id"], run["run_id"])]
        assert (mine.state, mine.run_type) == (run["state"], run["run_type"])
        assert mine.logical_date == utc(run["execution_date"])
        assert mine.data_interval_start == utc(run["data_interval_start"])
        assert mine.data_interval_end == utc(run["data_interval_end"])
        assert (mine.start_date, mine.end_date) == (utc(run["start_date"]), utc(run["end_date"]))
        assert mine.conf == (load_conf(run["conf"]) or {})
        assert mine.note == notes.get(run["id"])
    assert ours[("mig_failing", "manual__failing")].note == (
        "Investigated: the upstream API was down"
    )


def _same_instances(airflow: AirflowMetastore, sessions: sessionmaker[Session]) -> None:
    notes = {(n["dag_id"], n["run_id"], n["task_id"], n["map_index"]): n["content"]
             for n in airflow.rows("task_instance_note")}  # fmt: skip
    ours = {(t.dag_id, t.run_id, t.task_id, t.map_index): t for t in rows(sessions, TaskInstance)}
    theirs = airflow.rows("task_instance")
    assert len(ours) == len(theirs) == 3 * 6 + 2  # 3 runs of 6 (3 mapped), one run of 2
    for ti in theirs:
        key = (ti["dag_id"], ti["run_id"], ti["task_id"], ti["map_index"])
        mine = ours[key]
        assert (mine.state, mine.try_number, mine.max_tries) == (
            ti["state"], ti["try_number"], ti["max_tries"]
        )  # fmt: skip
        assert (mine.pool, mine.pool_slots, mine.queue, mine.priority_weight) == (
            ti["pool"], ti["pool_slots"], ti["queue"], ti["priority_weight"]
        )  # fmt: skip
        assert (mine.start_date, mine.end_date) == (utc(ti["start_date"]), utc(ti["end_date"]))
        assert mine.duration == ti["duration"] and mine.hostname == (ti["hostname"] or None)
        assert mine.note == notes.get(key)
    squares = [t for k, t in ours.items() if k[2] == "square"]
    assert sorted({t.map_index for t in squares}) == [0, 1, 2]
    assert {t.pool for t in squares} == {"mig_pool"}


def _same_tries(airflow: AirflowMetastore, sessions: sessionmaker[Session]) -> None:
    tries: dict[tuple[str, str], list[tuple[int, str]]] = {}
    for t in sorted(rows(sessions, TaskInstanceHistory), key=lambda t: t.try_number):
        tries.setdefault((t.run_id, t.task_id), []).append((t.try_number, t.state))
    for ti in airflow.rows("task_instance", task_id="flaky"):
        assert [n for n, _ in tries[(ti["run_id"], "flaky")]] == [1, 2]
        assert tries[(ti["run_id"], "flaky")][-1] == (2, "success")
    assert tries[("manual__failing", "always_fails")][-1] == (2, "failed")
    assert ("manual__failing", "after") not in tries  # upstream_failed: never tried
    earlier = {(h["run_id"], h["task_id"], h["try_number"]) for h in
               airflow.rows("task_instance_history")}  # fmt: skip
    assert earlier <= {(r, t, n) for (r, t), v in tries.items() for n, _ in v}


def _same_xcoms(airflow: AirflowMetastore, sessions: sessionmaker[Session]) -> None:
    theirs = {(x["run_id"], x["task_id"], x["map_index"], x["key"]): json.loads(x["value"])
              for x in airflow.rows("xcom")}  # fmt: skip
    ours = {(x.run_id, x.task_id, x.map_index, x.key): json.loads(x.value or "null")
            for x in rows(sessions, XCom)}  # fmt: skip
    assert ours == theirs
    assert sorted(v for k, v in ours.items() if k[1] == "square")[:3] == [1, 1, 1]


def _same_definitions(sessions: sessionmaker[Session], settings: Settings) -> None:
    fernet = make_fernet(settings.core.fernet_key)
    with sessions() as session:
        assert get_variable("plain_var", session=session, fernet=fernet) == "hello"
        assert json.loads(get_variable("json_var", session=session, fernet=fernet)) == {"a": [1, 2]}
        assert get_variable("unicode_var", session=session, fernet=fernet) == "grüße ✓"
        conn = get_connection("mig_postgres", session=session, fernet=fernet)
        assert (conn.host, conn.login, conn.password, conn.port, conn.schema) == (
            "db.example.com", "etl", "s3cr3t!", 5432, "warehouse"
        )  # fmt: skip
        assert json.loads(conn.extra or "") == {"sslmode": "require"}
        assert session.get(SlotPool, "mig_pool").slots == 2  # type: ignore[union-attr]
        users = {u.username: u for u in session.scalars(select(User))}
        assert {n: (u.role, u.active) for n, u in users.items()} == {
            "alice": ("Admin", True), "bob": ("Viewer", True), "carol": ("Op", True),
            "dave": ("User", True),
        }  # fmt: skip
        now = utc(users["alice"].created_at) + timedelta(days=1)  # type: ignore[operator]
        assert authenticate("alice", "alice-pw", session=session, now=now) is not None
        assert authenticate("bob", "wrong", session=session, now=now) is None
        paused = {d.dag_id: d.is_paused for d in session.scalars(select(Dag))}
        assert paused == {"mig_daily": False, "mig_failing": False, "mig_paused": True}


def test_the_daily_dag_gets_exactly_its_next_run(
    airflow: AirflowMetastore,
    session_factory: sessionmaker[Session],
    metastore_settings: Settings,
) -> None:
    run_migration(airflow, session_factory, metastore_settings)
    scheduled = [r for r in rows(session_factory, DagRun)
                 if r.dag_id == "mig_daily" and r.run_type == "scheduled"]  # fmt: skip
    last = max(scheduled, key=lambda r: r.logical_date)
    assert last.data_interval_end is not None
    next_after = last.data_interval_end + timedelta(days=1)  # @daily: the interval's end
    prepare_user_code(metastore_settings)
    # the fixture's Airflow ran on 2026-12-07: the clock starts just before the next run
    # is due, whatever today's date
    fake_clock = FakeClock(next_after - timedelta(seconds=1))
    harness = InProcessScheduler(
        metastore_settings, session_factory, folders=[Path(DAGS)], clock=fake_clock
    )
    try:
        harness.process_dags()
        harness.loop.run_once()
        assert _daily_runs(session_factory) == {r.run_id for r in scheduled}  # nothing re-run
        fake_clock.set(next_after + timedelta(seconds=1))
        harness.loop.run_once()
        harness.loop.run_once()
    finally:
        harness.close()
        airflow_compat.uninstall()
    new = _daily_runs(session_factory) - {r.run_id for r in scheduled}
    assert new == {f"scheduled__{last.data_interval_end.isoformat()}"}
    paused_runs = [r for r in rows(session_factory, DagRun) if r.dag_id == "mig_paused"]
    assert paused_runs == []


def _daily_runs(sessions: sessionmaker[Session]) -> set[str]:
    return {r.run_id for r in rows(sessions, DagRun) if r.dag_id == "mig_daily"}


def test_the_command_says_what_it_copied(
    airflow_url: str, metastore_settings: Settings, session_factory: sessionmaker[Session],
    tradewind_home: Path,
) -> None:  # fmt: skip
    env = {
        "TRADEWIND_HOME": str(tradewind_home),
        "TRADEWIND__METASTORE__URL": metastore_settings.metastore.url,
        "TRADEWIND__CORE__FERNET_KEY": metastore_settings.core.fernet_key,
    }
    runner = CliRunner()
    args = ["migrate-from-airflow", airflow_url, "--fernet-key", FERNET_KEY, "-o", "json"]
    wrong_key = [*args[:3], Fernet.generate_key().decode()]
    wrong = runner.invoke(cli, wrong_key, env=env)
    assert wrong.exit_code != 0 and "cannot decrypt" in str(wrong.exception)
    assert rows(session_factory, DagRun) == []  # nothing written
    first = runner.invoke(cli, args, env=env, catch_exceptions=False)
    assert first.exit_code == 0, first.output
    added = {r["table"]: r["added"] for r in json.loads(first.output)}
    assert added["dag_runs"] == 4 and added["users"] == 4
    again = runner.invoke(cli, [*args, "--dry-run"], env=env, catch_exceptions=False)
    assert {r["table"]: r["added"] for r in json.loads(again.output)} == dict.fromkeys(added, 0)
