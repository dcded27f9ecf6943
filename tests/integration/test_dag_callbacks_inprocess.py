"""DAG-level callbacks end to end (SQLite, MariaDB, PostgreSQL, fake clock): the
scheduler records a request when a run ends, the callback runner runs it once in a
child with Airflow's context (the run and the reason), and logs the outcome to the
run's callbacks.log. Counted by side effect, so a second pass or a second runner (a
new leader's) that ran it again would show."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from cluster.dagfiles.callbacks import CallbackRunner, callback_log
from cluster.metastore.models import CallbackRequest
from tests.dagfiles import write_dag
from tests.integration.scheduler_harness import InProcessScheduler

CALLBACK_DAGS = """
import time
from datetime import datetime
from pathlib import Path
from cluster.sdk import DAG, task

SIDE_EFFECTS = Path("@SIDE_EFFECTS@")

def note(context):
    run = context["dag_run"]
    print(f"called for {run.run_id}")
    with open(SIDE_EFFECTS / "calls", "a") as fh:
        fh.write(f"{run.dag_id} {run.run_id} {run.state} {context['reason']} {context['ti'].task_id}\\n")

def broken(context):
    raise RuntimeError("the pager is down")

def stuck(context):
    time.sleep(60)

@task
def ok():
    return 1

@task
def boom():
    raise RuntimeError("fails on purpose")

with DAG("fails", schedule=None, start_date=datetime(2024, 1, 1),
         on_failure_callback=note, on_success_callback=note):
    ok() >> boom()

with DAG("succeeds", schedule=None, start_date=datetime(2024, 1, 1), on_success_callback=[note]):
    ok()

with DAG("broken_pager", schedule=None, start_date=datetime(2024, 1, 1),
         on_failure_callback=broken):
    boom()

with DAG("stuck_pager", schedule=None, start_date=datetime(2024, 1, 1),
         on_failure_callback=stuck):
    boom()
"""

DAGS = ("fails", "succeeds", "broken_pager", "stuck_pager")


def test_dag_callbacks_run_once_with_the_run_and_the_reason(
    inprocess: InProcessScheduler, dags_folder: Path, tmp_path: Path, run_id: str
) -> None:
    side_effects = tmp_path / "side_effects"
    side_effects.mkdir()
    write_dag(dags_folder / "callbacks.py", CALLBACK_DAGS, side_effects=side_effects)
    harness = inprocess
    harness.process_dags()
    for dag_id in DAGS:
        harness.trigger(dag_id, run_id)
    finished = harness.run_until_finished([(d, run_id) for d in DAGS])
    assert finished[("fails", run_id)] == "failed"
    assert finished[("succeeds", run_id)] == "success"
    # the loop decided the ends; no callback ran in it
    assert not (side_effects / "calls").exists()
    logs = tmp_path / "logs"
    runners = [CallbackRunner(harness.sessions, log_folder=logs, timeout=2, host=h) for h in "ab"]

    assert runners[0].run_pending() == 4
    assert runners[0].run_pending() == 0 and runners[1].run_pending() == 0
    harness.loop.run_once()

    calls = sorted((side_effects / "calls").read_text().splitlines())
    assert calls == [
        f"fails {run_id} failed task_failure boom",
        f"succeeds {run_id} success success ok",
    ]
    with harness.sessions() as session:
        rows = session.execute(select(CallbackRequest.dag_id, CallbackRequest.state)).all()
    assert sorted(rows) == [
        ("broken_pager", "failed"),
        ("fails", "success"),
        ("stuck_pager", "failed"),
        ("succeeds", "success"),
    ]
    fails_log = callback_log(logs, "fails", run_id).read_text()
    assert "called for" in fails_log and "on_failure_callback succeeded" in fails_log
    broken_log = callback_log(logs, "broken_pager", run_id).read_text()
    assert "RuntimeError: the pager is down" in broken_log and "Traceback" in broken_log
    assert "did not finish within 2 s" in callback_log(logs, "stuck_pager", run_id).read_text()
