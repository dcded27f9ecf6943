"""Setup and teardown end to end: DAG file, DAG processor, scheduler loop, production
pool, metastore (each test runs on SQLite, MariaDB and PostgreSQL), on a fake clock.

A setup creates a "resource" (a file), work fails, the teardown still removes it and
gets the setup's XCom; the run fails for the work, not for the teardown; clearing the
failed work brings its setup and teardown back, and the second run succeeds.
"""

from __future__ import annotations

from pathlib import Path

from cluster import actions
from cluster.actions import load_dag
from tests.dagfiles import write_dag
from tests.integration.scheduler_harness import TEST_ACTOR, InProcessScheduler, task_states

SETUP_TEARDOWN_DAG = """
from datetime import datetime
from pathlib import Path
from cluster.sdk import DAG, setup, task, teardown

SIDE_EFFECTS = Path("@SIDE_EFFECTS@")

def note(name, text):
    with open(SIDE_EFFECTS / name, "a") as fh:
        fh.write(text + "\\n")

@setup
def create():
    note("log", "create")
    return "resource-1"

@teardown
def delete(resource):
    note("log", f"delete {resource}")

@teardown
def broken_delete(resource):
    raise RuntimeError(f"the clean-up of {resource} fails")

@task
def work(resource):
    note("log", f"work {resource}")
    if not (SIDE_EFFECTS / "work_may_succeed").exists():
        raise RuntimeError("work fails on purpose")

@task
def report():
    note("log", "report")

with DAG("resource_work", schedule=None, start_date=datetime(2024, 1, 1)):
    made = create()
    with delete(made):
        work(made) >> report()

with DAG("failing_cleanup", schedule=None, start_date=datetime(2024, 1, 1)):
    made = create()
    with broken_delete(made):
        report()

with DAG("strict_cleanup", schedule=None, start_date=datetime(2024, 1, 1)):
    made = create()
    with broken_delete(made).as_teardown(on_failure_fail_dagrun=True):
        report()
"""


def _log(side_effects: Path) -> list[str]:
    return (side_effects / "log").read_text().splitlines()


def test_the_teardown_runs_after_failed_work_and_clearing_brings_it_back(
    inprocess: InProcessScheduler, dags_folder: Path, tmp_path: Path, run_id: str
) -> None:
    side_effects = tmp_path / "side_effects"
    side_effects.mkdir()
    write_dag(dags_folder / "resources.py", SETUP_TEARDOWN_DAG, side_effects=side_effects)
    harness = inprocess
    harness.process_dags()
    harness.trigger("resource_work", run_id)

    finished = harness.run_until_finished([("resource_work", run_id)])

    assert finished == {("resource_work", run_id): "failed"}
    assert task_states(harness.sessions, "resource_work", run_id) == {
        "create": "success",
        "work": "failed",
        "report": "upstream_failed",
        "delete": "success",
    }
    assert _log(side_effects) == ["create", "work resource-1", "delete resource-1"]

    (side_effects / "work_may_succeed").touch()
    with harness.sessions.begin() as session:
        dag = load_dag(session, "resource_work")
        chosen = actions.select_task_ids(dag, task_ids=["work"], downstream=True)
        cleared = actions.clear(session, "resource_work", [run_id], chosen, actor=TEST_ACTOR)
    assert sorted(k.task_id for k in cleared) == ["create", "delete", "report", "work"]

    finished = harness.run_until_finished([("resource_work", run_id)])

    assert finished == {("resource_work", run_id): "success"}
    assert set(task_states(harness.sessions, "resource_work", run_id).values()) == {"success"}
    assert _log(side_effects)[3:] == [
        "create",
        "work resource-1",
        "report",
        "delete resource-1",
    ]


def test_a_failed_teardown_fails_the_run_only_when_it_asks_to(
    inprocess: InProcessScheduler, dags_folder: Path, tmp_path: Path, run_id: str
) -> None:
    side_effects = tmp_path / "side_effects"
    side_effects.mkdir()
    write_dag(dags_folder / "resources.py", SETUP_TEARDOWN_DAG, side_effects=side_effects)
    harness = inprocess
    harness.process_dags()
    runs = [("failing_cleanup", run_id), ("strict_cleanup", run_id)]
    for dag_id, _ in runs:
        harness.trigger(dag_id, run_id)

    finished = harness.run_until_finished(runs)

    assert finished == {runs[0]: "success", runs[1]: "failed"}
    for dag_id, _ in runs:
        assert task_states(harness.sessions, dag_id, run_id) == {
            "create": "success",
            "report": "success",
            "broken_delete": "failed",
        }
