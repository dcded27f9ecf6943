"""Airflow 2.10.5's dataset and cross-DAG example files under Tradewind's scheduler end as
they did under a real Airflow scheduler (``runs.json``'s ``scheduler`` section, made by
``tests/fixtures/airflow/generate.py scheduler``).

Each scenario is replayed step by step as Airflow's was (unpause some DAGs, or trigger one
for 2026-11-01, then iterate until nothing is left to do): after each step, the runs that
appeared (DAG, run type, whether the run is the trigger's, state, every instance's state,
the dataset events the run consumed) and the dataset events emitted must be Airflow's. The
harness is in-process on a fake clock shared with the pool's tries and their sensors, so
the ExternalTaskMarker child's sensors, which wait for a task group the parent lacks, time
out after their 600 s as on Airflow without 600 s of waiting.
"""

from __future__ import annotations

import json
import pathlib
import shutil
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update

from cluster import actions
from cluster.metastore.dataset_models import DagRunDatasetEvent, DatasetEvent, DatasetRow
from cluster.metastore.models import Dag, DagRun, TaskInstance
from tests.airflow_compat import rewrite_tree
from tests.integration.scheduler_harness import TEST_ACTOR, InProcessScheduler

FIXTURES = pathlib.Path(__file__).parents[1] / "fixtures" / "airflow"
RUNS = json.loads((FIXTURES / "runs.json").read_text())
SCENARIOS = RUNS["scheduler"]
LOGICAL_DATE = datetime.fromisoformat(RUNS["logical_date"]).replace(tzinfo=UTC)
#: iterations of the loop one step may take before it counts as never settling
MAX_ITERATIONS = 400


@pytest.fixture
def harness(
    inprocess: InProcessScheduler, dags_folder: pathlib.Path, tmp_path: pathlib.Path
) -> InProcessScheduler:
    """The in-process scheduler on SQLite with every example file, imports swapped."""
    rewrite_tree(FIXTURES / "example_dags", tmp_path / "swapped")
    return inprocess


@pytest.mark.parametrize("metastore_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_scenario_ends_as_under_airflows_scheduler(
    scenario: str,
    harness: InProcessScheduler,
    dags_folder: pathlib.Path,
    tmp_path: pathlib.Path,
) -> None:
    recorded = SCENARIOS[scenario]
    for name in recorded["files"]:
        shutil.copy(tmp_path / "swapped" / name, dags_folder / name)
    harness.process_dags()
    with harness.sessions.begin() as session:  # Airflow's DAGs start paused
        session.execute(update(Dag).values(is_paused=True))
    for step in recorded["steps"]:
        seen = _step(harness, step["step"])
        assert seen["new_runs"] == step["new_runs"], step["step"]
        assert seen["dataset_events"] == sorted(step["dataset_events"], key=json.dumps), step[
            "step"
        ]


def _step(harness: InProcessScheduler, step: str) -> dict[str, Any]:
    """Do one step as Airflow's CLI did, settle, and describe what appeared."""
    with harness.sessions() as session:
        runs_before = session.scalar(select(func.coalesce(func.max(DagRun.id), 0))) or 0
        events_before = session.scalar(select(func.coalesce(func.max(DatasetEvent.id), 0))) or 0
    verb, *dag_ids = step.split(" (")[0].split()
    with harness.sessions.begin() as session:
        for dag_id in dag_ids:
            if verb == "unpause":
                session.execute(update(Dag).where(Dag.dag_id == dag_id).values(is_paused=False))
            else:
                actions.trigger(
                    session,
                    dag_id,
                    actor=TEST_ACTOR,
                    logical_date=LOGICAL_DATE,
                    now=harness.clock(),
                )
    _settle(harness)
    return {
        "new_runs": _runs_after(harness, runs_before),
        "dataset_events": _events_after(harness, events_before),
    }


def _settle(harness: InProcessScheduler) -> None:
    """Iterate until no run is queued or running and an idle iteration changed nothing;
    the clock jumps to the next reschedule or retry when nothing was dispatched."""
    quiet = 0
    for _ in range(MAX_ITERATIONS):
        dispatched = harness.loop.run_once()
        with harness.sessions() as session:
            active = session.scalar(
                select(func.count())
                .select_from(DagRun)
                .where(DagRun.state.in_(["queued", "running"]))
            )
        quiet = quiet + 1 if not dispatched and not active else 0
        if quiet >= 3:
            return
        wake = harness.next_wake_up()
        if not dispatched and wake is not None and wake > harness.clock():
            harness.clock.set(wake)
        else:
            harness.clock.advance(timedelta(seconds=2))
    raise AssertionError(f"the scheduler did not settle in {MAX_ITERATIONS} iterations")


def _runs_after(harness: InProcessScheduler, after_id: int) -> list[dict[str, Any]]:
    with harness.sessions() as session:
        runs = session.scalars(select(DagRun).where(DagRun.id > after_id)).all()
        described = [_describe(session, run) for run in runs]
    return sorted(described, key=lambda r: (r["dag_id"], r["run_type"]))


def _describe(session: Any, run: DagRun) -> dict[str, Any]:
    """A run in the shape of ``generate.py``'s ``describe_run``."""
    tis = session.execute(
        select(TaskInstance.task_id, TaskInstance.map_index, TaskInstance.state)
        .where(TaskInstance.dag_id == run.dag_id, TaskInstance.run_id == run.run_id)
        .order_by(TaskInstance.task_id, TaskInstance.map_index)
    ).all()
    consumed = session.execute(
        select(DatasetRow.uri, DatasetEvent.source_dag_id, DatasetEvent.source_task_id)
        .join(DatasetEvent, DatasetEvent.dataset_id == DatasetRow.id)
        .join(DagRunDatasetEvent, DagRunDatasetEvent.event_id == DatasetEvent.id)
        .where(DagRunDatasetEvent.dag_run_id == run.id)
        .order_by(DatasetEvent.id)
    ).all()
    return {
        "dag_id": run.dag_id,
        "run_type": run.run_type,
        "logical_date_is_trigger": run.run_id.endswith(f"{LOGICAL_DATE.date()}T00:00:00+00:00"),
        "state": str(run.state),
        "task_instances": [[t, m, str(s) if s is not None else None] for t, m, s in tis],
        "consumed_events": [list(c) for c in consumed],
    }


def _events_after(harness: InProcessScheduler, after_id: int) -> list[list[Any]]:
    with harness.sessions() as session:
        rows = session.execute(
            select(
                DatasetRow.uri,
                DatasetEvent.source_dag_id,
                DatasetEvent.source_task_id,
                DatasetEvent.extra,
            )
            .join(DatasetRow, DatasetRow.id == DatasetEvent.dataset_id)
            .where(DatasetEvent.id > after_id)
            .order_by(DatasetEvent.id)
        ).all()
    # Airflow's extra is never null; producers that ran side by side may record in any order
    found = [[u, d, t, {} if x is None else x] for u, d, t, x in rows]
    return sorted(found, key=json.dumps)
