"""Datasets end to end: producers' successes emit events in the transaction that records
them, consumers with ``&`` / ``|`` conditions get exactly the runs Airflow 2.10's rules
give, and a consumer's task sees the events that triggered its run (DAG processor,
fenced scheduler loop, production pool, metastore; SQLite, MariaDB and PostgreSQL).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from cluster.errors import FencedOff
from cluster.metastore.dataset_models import DatasetDagRunQueue, DatasetEvent
from cluster.metastore.datasets import EventSpec, record_events
from cluster.metastore.models import Dag, DagRun
from cluster.scheduler.fencing import Fence
from cluster.scheduler.loop import SchedulerLoop
from cluster.states import DagRunState
from tests.dagfiles import write_dag
from tests.integration.scheduler_harness import InProcessScheduler

DATASET_DAGS = """
import json
from datetime import datetime
from pathlib import Path
from cluster.sdk import DAG, Dataset, Metadata, task

OUT = Path("@SIDE_EFFECTS@")
A, B, C = Dataset("s3://bucket/a"), Dataset("s3://bucket/b"), Dataset("s3://bucket/c")

for name, dataset in (("make_a", A), ("make_b", B), ("make_c", C)):
    with DAG(name, schedule=None, start_date=datetime(2024, 1, 1)):
        @task(task_id="produce", outlets=[dataset])
        def produce(dataset=dataset):
            yield Metadata(dataset, {"made_by": dataset.uri})
        produce()

for name, condition in (("needs_a_and_b", A & B), ("needs_a_or_b", A | B),
                        ("needs_a_or_b_and_c", A | (B & C))):
    with DAG(name, schedule=condition, start_date=datetime(2024, 1, 1)):
        @task(task_id="consume")
        def consume(triggering_dataset_events=None, dag_run=None):
            seen = {uri: [e.extra for e in events]
                    for uri, events in triggering_dataset_events.items()}
            (OUT / f"{dag_run.dag_id}.{dag_run.run_id}.json").write_text(json.dumps(seen))
        consume()
"""

CONSUMERS = ("needs_a_and_b", "needs_a_or_b", "needs_a_or_b_and_c")


def _settle(harness: InProcessScheduler, rounds: int = 12) -> None:
    """Iterate (clock past the poll interval each time) until no run is active."""
    for _ in range(rounds):
        harness.clock.advance(2)
        harness.loop.run_once()
        with harness.sessions() as session:
            active = session.scalar(
                select(func.count())
                .select_from(DagRun)
                .where(DagRun.state.in_([DagRunState.QUEUED, DagRunState.RUNNING]))
            )
        if not active:
            return
    raise AssertionError("runs still active")


def _produce(harness: InProcessScheduler, dag_id: str, n: int) -> None:
    harness.trigger(dag_id, f"manual__{dag_id}_{n}")
    _settle(harness)


def _consumer_runs(harness: InProcessScheduler) -> dict[str, list[str]]:
    with harness.sessions() as session:
        rows = session.execute(
            select(DagRun.dag_id, DagRun.run_id, DagRun.state)
            .where(DagRun.run_type == "dataset_triggered")
            .order_by(DagRun.logical_date)
        ).all()
    assert all(state == DagRunState.SUCCESS for _, _, state in rows), rows
    return {c: [run_id for dag_id, run_id, _ in rows if dag_id == c] for c in CONSUMERS}


def test_and_or_consumers_get_airflows_run_count(
    inprocess: InProcessScheduler, dags_folder: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    write_dag(dags_folder / "datasets.py", DATASET_DAGS, side_effects=out)
    inprocess.process_dags()

    _produce(inprocess, "make_a", 1)  # A: "or" runs, "a or (b and c)" runs, "and" waits
    _produce(inprocess, "make_a", 2)  # A again: the "and" consumer's A row is not doubled
    _produce(inprocess, "make_b", 1)  # B: "and" has both now, "or" runs, "a or (b and c)" waits
    _produce(inprocess, "make_c", 1)  # C: "a or (b and c)" runs

    runs = _consumer_runs(inprocess)
    assert {c: len(r) for c, r in runs.items()} == {
        "needs_a_and_b": 1,
        "needs_a_or_b": 3,
        "needs_a_or_b_and_c": 3,
    }
    with inprocess.sessions() as session:
        assert session.scalar(select(func.count()).select_from(DatasetEvent)) == 4
        assert session.scalar(select(func.count()).select_from(DatasetDagRunQueue)) == 0
    # the "and" consumer's one run saw both events of A and the one of B, with their extra
    seen = json.loads((out / f"needs_a_and_b.{runs['needs_a_and_b'][0]}.json").read_text())
    assert seen == {
        "s3://bucket/a": [{"made_by": "s3://bucket/a"}, {"made_by": "s3://bucket/a"}],
        "s3://bucket/b": [{"made_by": "s3://bucket/b"}],
    }


def _pause(harness: InProcessScheduler, dag_id: str, paused: bool) -> None:
    with harness.sessions.begin() as session:
        session.execute(update(Dag).where(Dag.dag_id == dag_id).values(is_paused=paused))


def test_a_paused_consumer_keeps_its_queue_and_runs_once_unpaused(
    inprocess: InProcessScheduler, dags_folder: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    write_dag(dags_folder / "datasets.py", DATASET_DAGS, side_effects=out)
    inprocess.process_dags()
    _pause(inprocess, "needs_a_or_b", True)
    _produce(inprocess, "make_a", 1)
    _produce(inprocess, "make_b", 1)
    assert _consumer_runs(inprocess)["needs_a_or_b"] == []
    _pause(inprocess, "needs_a_or_b", False)
    _settle(inprocess)
    assert len(_consumer_runs(inprocess)["needs_a_or_b"]) == 1


ALIAS_DAGS = """
import json
from datetime import datetime
from pathlib import Path
from cluster.sdk import DAG, Dataset, DatasetAlias, task

OUT = Path("@SIDE_EFFECTS@")
ALIAS = DatasetAlias("example-alias")

with DAG("through_alias", schedule=None, start_date=datetime(2024, 1, 1)):
    @task(outlets=[ALIAS])
    def produce(*, outlet_events):
        outlet_events[ALIAS].add(Dataset("s3://bucket/resolved"), extra={"via": "alias"})
    produce()

with DAG("on_alias", schedule=[ALIAS], start_date=datetime(2024, 1, 1)):
    @task(inlets=[Dataset("s3://bucket/resolved")])
    def consume(*, inlet_events, triggering_dataset_events, dag_run):
        seen = {"inlet": [e.extra for e in inlet_events[Dataset("s3://bucket/resolved")]],
                "triggering": sorted(triggering_dataset_events)}
        (OUT / f"{dag_run.run_id}.json").write_text(json.dumps(seen))
    consume()
"""


def test_an_alias_resolves_and_triggers_its_consumer(
    inprocess: InProcessScheduler, dags_folder: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    write_dag(dags_folder / "alias.py", ALIAS_DAGS, side_effects=out)
    inprocess.process_dags()
    _produce(inprocess, "through_alias", 1)
    _settle(inprocess)
    with inprocess.sessions() as session:
        runs = session.scalars(
            select(DagRun.run_id).where(
                DagRun.dag_id == "on_alias", DagRun.run_type == "dataset_triggered"
            )
        ).all()
    assert len(runs) == 1
    seen = json.loads((out / f"{runs[0]}.json").read_text())
    assert seen == {"inlet": [{"via": "alias"}], "triggering": ["s3://bucket/resolved"]}


def test_a_fenced_off_leader_neither_loses_nor_duplicates_a_consumer_run(
    inprocess: InProcessScheduler, dags_folder: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    write_dag(dags_folder / "datasets.py", DATASET_DAGS, side_effects=out)
    inprocess.process_dags()
    with inprocess.sessions.begin() as session:
        record_events(session, [EventSpec(uri="s3://bucket/a")], now=inprocess.clock())
    successor = Fence(host="successor")
    with inprocess.sessions.begin() as session:
        successor.acquire(session, now=inprocess.clock())
    inprocess.clock.advance(2)
    with pytest.raises(FencedOff):
        inprocess.loop.run_once()  # the old leader's dataset step is rolled back whole
    with inprocess.sessions() as session:
        # one row per consumer of A, none consumed
        assert session.scalar(select(func.count()).select_from(DatasetDagRunQueue)) == 3
        assert session.scalar(select(func.count()).select_from(DagRun)) == 0
    new_leader = SchedulerLoop(
        inprocess.settings,
        sessions=inprocess.sessions,
        executor=inprocess.executor,
        fence=successor,
        clock=inprocess.clock,
    )
    for _ in range(3):
        inprocess.clock.advance(2)
        new_leader.run_once()
    with inprocess.sessions() as session:
        created = session.execute(
            select(DagRun.dag_id).where(DagRun.run_type == "dataset_triggered")
        ).scalars()
        assert sorted(created) == ["needs_a_or_b", "needs_a_or_b_and_c"]
        # the AND consumer still waits for B with its A row kept
        assert session.scalar(select(func.count()).select_from(DatasetDagRunQueue)) == 1
