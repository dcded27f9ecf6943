"""Issue 14's guarantee on a real cluster: dataset-triggered runs and DAG-level callbacks
survive a SIGKILLed scheduler leader with nothing lost and nothing done twice.

Two ``tradewind scheduler`` processes elect a leader through a real three-node
ZooKeeper, Celery workers run the tries from RabbitMQ, and MariaDB holds the state.
200 producer runs update two datasets (400 events); two consumers wait on ``A & B``
and ``A | B``. The leader's process group is SIGKILLed once a good part of the events
exist. Afterwards every event must have fed exactly one run of each consumer (the
links and the consumers' own side effects say so), every consumer run must have run
its task once, and each failed run of a paging DAG must have paged exactly once:
one whose callback ran before the kill, one that failed after it.

Each producer run updates both datasets in one try, so their events and queue rows
commit in one transaction. With A and B updated by two tries, the end was a race: when
the last B event committed before the last A, a run of ``A & B`` made between the two
took every B, and the last A then waited (rightly, as in Airflow) for a B that never
came, so the consumers never settled.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from cluster.devcluster.services.mariadb import MariaDB
from cluster.devcluster.services.rabbitmq import RabbitMQCluster
from cluster.devcluster.services.zookeeper import ZooKeeperEnsemble
from cluster.metastore.dataset_models import DagRunDatasetEvent, DatasetDagRunQueue, DatasetEvent
from cluster.metastore.models import CallbackRequest, DagRun
from tests.cluster.ha_harness import HaDeployment, kill_group
from tests.waiting import wait_for

PRODUCER_RUNS = 200
EVENTS = 2 * PRODUCER_RUNS

DATASET_DAGS = """
import time
from datetime import datetime
from pathlib import Path

from cluster.operators.python import PythonOperator
from cluster.sdk import DAG, Dataset, task

OUT = Path("@SIDE_EFFECTS@")
START = datetime(2024, 1, 1)
A, B = Dataset("s3://ha/a"), Dataset("s3://ha/b")


def produce():
    return None


# one try updates both datasets: its two events commit together (see the module's docstring)
with DAG("ha_produce", schedule=None, start_date=START, max_active_runs=40,
         max_active_tasks=64):
    PythonOperator(task_id="a_and_b", python_callable=produce, outlets=[A, B])

for name, condition in (("ha_a_and_b", A & B), ("ha_a_or_b", A | B)):
    with DAG(name, schedule=condition, start_date=START, max_active_runs=200):
        @task(task_id="consume")
        def consume(triggering_dataset_events=None, dag_run=None):
            seen = sum(len(events) for events in triggering_dataset_events.values())
            with open(OUT / dag_run.dag_id, "a") as fh:
                fh.write(f"{dag_run.run_id} {seen}\\n")
        consume()


def page(context):
    with open(OUT / "pages", "a") as fh:
        fh.write(f"{context['dag_run'].run_id} {context['reason']}\\n")


def fail_when_released(run_id=None):
    deadline = time.monotonic() + 600
    while not (OUT / f"release_{run_id}").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    raise RuntimeError("fails on purpose")


with DAG("ha_pager", schedule=None, start_date=START, on_failure_callback=page):
    PythonOperator(task_id="fail", python_callable=fail_when_released,
                   op_kwargs={"run_id": "{{ run_id }}"})
"""

DAG_IDS = {"ha_produce", "ha_a_and_b", "ha_a_or_b", "ha_pager"}
CONSUMERS = ("ha_a_and_b", "ha_a_or_b")


@pytest.fixture
def cluster(
    tmp_path: Path, mariadb: MariaDB, broker: RabbitMQCluster, zookeeper: ZooKeeperEnsemble
) -> Iterator[HaDeployment]:
    deployment = HaDeployment(
        tmp_path,
        zookeeper_hosts=zookeeper.hosts,
        metastore_url=mariadb.create_database(f"tw_hads_{tmp_path.name[-16:].replace('-', '_')}"),
        broker_urls=broker.urls,
        workers={"127.0.1.31": "default", "127.0.1.32": "default"},
        concurrency=6,
        schedulers=2,
        dags={"ha_datasets.py": DATASET_DAGS},
    )
    try:
        yield deployment.start(DAG_IDS)
    finally:
        deployment.stop()


@pytest.mark.mariadb
def test_dataset_runs_and_callbacks_survive_a_sigkilled_leader(cluster: HaDeployment) -> None:
    leader, lease = cluster.leader()
    early, late = cluster.trigger("ha_pager"), cluster.trigger("ha_pager")
    (cluster.side_effects / f"release_{early}").touch()
    producer_runs = [cluster.trigger("ha_produce") for _ in range(PRODUCER_RUNS)]
    wait_for(lambda: _pages(cluster) == [f"{early} task_failure"], timeout=180, interval=0.2)
    wait_for(lambda: _events(cluster) >= EVENTS // 3, timeout=300, interval=0.1)

    kill_group(leader)
    _, new_lease = cluster.leader(newer_than=lease.epoch, timeout=60)
    (cluster.side_effects / f"release_{late}").touch()

    for run_id in producer_runs:
        assert cluster.wait_for_run("ha_produce", run_id, timeout=600) == "success"
    assert cluster.wait_for_run("ha_pager", late, timeout=120) == "failed"
    wait_for(
        lambda: _settled(cluster),
        timeout=300,
        interval=0.5,
        message=lambda: f"{_unsettled(cluster)}\n{cluster.logs()}",
    )

    assert _events(cluster) == EVENTS
    epochs: set[int] = set()
    for consumer in CONSUMERS:
        epochs |= _assert_every_event_fed_one_run(cluster, consumer)
    # the failover happened while consumer runs were being made
    assert lease.epoch in epochs and any(e >= new_lease.epoch for e in epochs), epochs
    wait_for(lambda: len(_pages(cluster)) >= 2, timeout=120, interval=0.2)
    assert sorted(_pages(cluster)) == sorted([f"{early} task_failure", f"{late} task_failure"])
    with cluster.sessions() as session:
        requests = session.execute(select(CallbackRequest.run_id, CallbackRequest.state)).all()
    assert sorted(requests) == sorted([(early, "success"), (late, "success")])


def _assert_every_event_fed_one_run(cluster: HaDeployment, consumer: str) -> set[int]:
    """Each of the 400 events is linked to exactly one run of ``consumer``, and each run
    ran its task once and saw exactly its linked events; returns the creating epochs."""
    with cluster.sessions() as session:
        runs = session.execute(
            select(DagRun.id, DagRun.run_id, DagRun.state, DagRun.created_by_epoch).where(
                DagRun.dag_id == consumer
            )
        ).all()
        links = session.execute(
            select(DagRunDatasetEvent.dag_run_id, DagRunDatasetEvent.event_id).where(
                DagRunDatasetEvent.dag_run_id.in_([r.id for r in runs])
            )
        ).all()
        uris_per_run = dict(
            session.execute(
                select(
                    DagRunDatasetEvent.dag_run_id, func.count(DatasetEvent.dataset_id.distinct())
                )
                .join(DatasetEvent, DatasetEvent.id == DagRunDatasetEvent.event_id)
                .where(DagRunDatasetEvent.dag_run_id.in_([r.id for r in runs]))
                .group_by(DagRunDatasetEvent.dag_run_id)
            ).all()
        )
    fed = Counter(event_id for _, event_id in links)
    assert len(fed) == EVENTS, f"{consumer}: {EVENTS - len(fed)} events fed no run"
    assert set(fed.values()) == {1}, f"{consumer}: events fed two runs"
    assert {r.state for r in runs} == {"success"}, Counter(r.state for r in runs)
    per_run = Counter(run_pk for run_pk, _ in links)
    lines = (cluster.side_effects / consumer).read_text().splitlines()
    ran = Counter(line.split()[0] for line in lines)
    assert set(ran.values()) == {1} and len(ran) == len(runs), f"{consumer}: {ran}"
    seen = {line.split()[0]: int(line.split()[1]) for line in lines}
    assert seen == {r.run_id: per_run[r.id] for r in runs}
    if consumer == "ha_a_and_b":  # the condition held when each run was made
        assert set(uris_per_run.values()) == {2}
    print(f"{consumer}: {len(runs)} runs for {EVENTS} events")
    return {int(r.created_by_epoch) for r in runs}


def _events(cluster: HaDeployment) -> int:
    with cluster.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(DatasetEvent)) or 0)


def _pages(cluster: HaDeployment) -> list[str]:
    path = cluster.side_effects / "pages"
    return path.read_text().splitlines() if path.exists() else []


def _settled(cluster: HaDeployment) -> bool:
    """No consumer has queued events or an unfinished run."""
    with cluster.sessions() as session:
        queued = session.scalar(select(func.count()).select_from(DatasetDagRunQueue))
        active = session.scalar(
            select(func.count())
            .select_from(DagRun)
            .where(DagRun.dag_id.in_(CONSUMERS), DagRun.state.in_(["queued", "running"]))
        )
    return not queued and not active


def _unsettled(cluster: HaDeployment) -> str:
    """What keeps :func:`_settled` false: the queue rows and the consumers' unfinished runs
    (an intermittent failure here was seen with only the log tail to go by)."""
    with cluster.sessions() as session:
        rows = session.scalars(select(DatasetDagRunQueue)).all()
        runs = session.execute(
            select(DagRun.dag_id, DagRun.run_id, DagRun.state, DagRun.queued_at).where(
                DagRun.dag_id.in_(CONSUMERS), DagRun.state.in_(["queued", "running"])
            )
        ).all()
    queue = [(r.target_dag_id, r.dataset_id, r.created_at) for r in rows]
    return f"queue rows: {queue}\nunfinished consumer runs: {[tuple(r) for r in runs]}"
