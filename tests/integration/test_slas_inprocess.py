"""SLAs end to end (SQLite, MariaDB, PostgreSQL, fake clock): a task with an ``sla``
succeeds once, the clock moves on with no further run, the DAG processor's check
records Airflow's misses once (two checkers, as an old and a new leader, race for
them), and the callback runner calls ``sla_miss_callback`` once with Airflow's
arguments, then marks the misses notified. A DAG with SLAs but no success yet (it
starts in 2099) and a task without ``sla`` record nothing, as in Airflow."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from cluster.dagfiles.callbacks import CallbackRunner, sla_log
from cluster.metastore.models import CallbackRequest, DagRun, SlaMiss
from cluster.scheduler.slas import SlaChecker
from tests.dagfiles import write_dag
from tests.integration.scheduler_harness import InProcessScheduler

SLA_DAGS = """
import json
from datetime import datetime, timedelta
from pathlib import Path
from cluster.sdk import DAG, task

OUT = Path("@SIDE_EFFECTS@")

def missed(dag, task_list, blocking_task_list, slas, blocking_tis):
    with open(OUT / "sla_calls", "a") as fh:
        fh.write(json.dumps({"dag": dag.dag_id, "task_list": task_list,
                             "slas": [[s.task_id, s.execution_date.isoformat()] for s in slas],
                             "blocking": [b.task_id for b in blocking_tis]}) + "\\n")

with DAG("sla_daily", schedule="@daily", start_date=datetime(2023, 12, 1), catchup=False,
         sla_miss_callback=missed):
    @task(sla=timedelta(hours=1))
    def report():
        return 1

    @task
    def no_sla():
        return 2

    report() >> no_sla()

with DAG("sla_never_ran", schedule="@daily", start_date=datetime(2099, 1, 1), catchup=False,
         sla_miss_callback=missed):
    @task(sla=timedelta(minutes=5))
    def waits():
        return 1

    waits()
"""


def test_sla_misses_are_recorded_and_reported_once(
    inprocess: InProcessScheduler, dags_folder: Path, tmp_path: Path, run_id: str
) -> None:
    side_effects = tmp_path / "side_effects"
    side_effects.mkdir()
    write_dag(dags_folder / "slas.py", SLA_DAGS, side_effects=side_effects)
    harness = inprocess
    harness.process_dags()
    harness.trigger("sla_daily", run_id)
    assert harness.run_until_finished([("sla_daily", run_id)]) == {("sla_daily", run_id): "success"}
    with harness.sessions() as session:
        run = session.scalars(select(DagRun).where(DagRun.run_id == run_id)).one()
    assert run.data_interval_end is not None
    end = run.data_interval_end
    harness.clock.set(end + timedelta(days=3, hours=2))
    checkers = [SlaChecker(harness.sessions, clock=harness.clock) for _ in "ab"]

    assert checkers[0].check() == 3
    assert checkers[1].check() == 0 and checkers[0].check() == 0
    expected = [end + timedelta(days=n) for n in (1, 2, 3)]
    with harness.sessions() as session:
        rows = session.execute(select(SlaMiss.dag_id, SlaMiss.task_id, SlaMiss.execution_date))
        misses = sorted(rows.all())
        requests = session.scalars(select(CallbackRequest.kind)).all()
    assert misses == [("sla_daily", "report", when) for when in expected]
    assert requests == ["sla_miss_callback"]

    logs = tmp_path / "logs"
    runners = [CallbackRunner(harness.sessions, log_folder=logs, timeout=10, host=h) for h in "ab"]
    assert runners[0].run_pending() == 1
    assert runners[1].run_pending() == 0
    (call,) = [json.loads(line) for line in (side_effects / "sla_calls").read_text().splitlines()]
    assert call["dag"] == "sla_daily"
    assert call["slas"] == [["report", when.isoformat()] for when in expected]
    assert call["task_list"].splitlines() == [f"report on {w.isoformat()}" for w in expected]
    assert call["blocking"] == []
    with harness.sessions() as session:
        flags = session.execute(select(SlaMiss.notification_sent, SlaMiss.email_sent)).all()
        closed = session.scalars(select(CallbackRequest.state)).all()
    assert set(flags) == {(True, False)}
    assert closed == ["success"]
    assert "sla_miss_callback succeeded" in sla_log(logs, "sla_daily").read_text()

    # a later check finds the next miss only, and reports only it
    harness.clock.advance(timedelta(days=1))
    assert checkers[1].check() == 1
    assert runners[1].run_pending() == 1
    calls = (side_effects / "sla_calls").read_text().splitlines()
    assert len(calls) == 2
    assert json.loads(calls[1])["slas"] == [["report", (end + timedelta(days=4)).isoformat()]]
