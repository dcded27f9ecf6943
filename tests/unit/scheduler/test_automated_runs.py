"""The next scheduled run follows the latest automated run, scheduled or backfill, as in
Airflow (``DagModel._get_latest_runs_stmt``): a backfilled interval is not run again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, select
from sqlalchemy.orm import Session, sessionmaker

from cluster.dagfiles.serialize import serialize_dag
from cluster.metastore.models import Dag, DagRun, SerializedDagRow
from cluster.operators.empty import EmptyOperator
from cluster.scheduler.dagcache import DagCache
from cluster.scheduler.dagruns import create_due_runs
from cluster.sdk import DAG

START = datetime(2026, 12, 1, tzinfo=UTC)


def _daily(sessions: sessionmaker[Session], run_type: str) -> None:
    with DAG("daily", schedule="@daily", start_date=START, catchup=True) as dag:
        EmptyOperator(task_id="t")
    serialized = serialize_dag(dag)
    fingerprint = serialized.fingerprint()
    with sessions.begin() as session:
        session.add(Dag(dag_id="daily", fileloc="/dev/null", fingerprint=fingerprint))
        session.add(
            SerializedDagRow(dag_id="daily", fileloc="/dev/null", data=serialized.to_json(),
                             fingerprint=fingerprint)
        )  # fmt: skip
        for day in range(3):  # the first three intervals ran, finished
            logical = START + timedelta(days=day)
            session.execute(
                insert(DagRun).values(
                    dag_id="daily", run_id=f"{run_type}__{logical.isoformat()}",
                    run_type=run_type, state="success", conf={}, logical_date=logical,
                    data_interval_start=logical, data_interval_end=logical + timedelta(days=1),
                )
            )  # fmt: skip


@pytest.mark.parametrize("run_type", ["scheduled", "backfill"])
def test_the_next_run_follows_the_last_automated_one(
    session_factory: sessionmaker[Session], run_type: str
) -> None:
    _daily(session_factory, run_type)
    now = START + timedelta(days=4, hours=1)  # the fourth interval is due, the fifth not
    with session_factory.begin() as session:
        created = create_due_runs(session, DagCache(), now=now, epoch=1, limit=10)
    with session_factory() as session:
        new = session.scalars(select(DagRun.run_id).where(DagRun.run_type == "scheduled"))
        ids = set(new) - {f"scheduled__{(START + timedelta(days=d)).isoformat()}" for d in range(3)}
    assert created == 1
    assert ids == {f"scheduled__{(START + timedelta(days=3)).isoformat()}"}
