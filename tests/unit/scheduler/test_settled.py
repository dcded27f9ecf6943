"""A big run waiting only on its running tasks is skipped by the loop, and a waiting
instance (a retry) in it is still seen: the indexed probes that replace loading the run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from cluster.dagfiles.serialize import serialize_dag
from cluster.metastore.models import Dag, DagRun, SerializedDagRow, TaskInstance
from cluster.operators.empty import EmptyOperator
from cluster.scheduler.dagcache import DagCache
from cluster.scheduler.dagruns import SETTLED_CHECK_TASKS, step_active_runs
from cluster.sdk import DAG
from cluster.states import TaskState

NOW = datetime(2024, 5, 1, 12, tzinfo=UTC)
WIDTH = SETTLED_CHECK_TASKS + 20


def _fan_out(sessions: sessionmaker[Session]) -> None:
    with DAG("wide", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
        for i in range(WIDTH):
            EmptyOperator(task_id=f"t{i:03d}", on_execute_callback=print, retries=1)
    serialized = serialize_dag(dag)
    with sessions.begin() as session:
        fingerprint = serialized.fingerprint()
        session.add(Dag(dag_id="wide", fileloc="/dev/null", fingerprint=fingerprint))
        session.add(
            SerializedDagRow(
                dag_id="wide", fileloc="/dev/null", data=serialized.to_json(),
                fingerprint=fingerprint,
            )
        )  # fmt: skip
        session.execute(
            insert(DagRun).values(
                dag_id="wide", run_id="r", run_type="manual", state="queued", conf={},
                logical_date=NOW,
            )
        )  # fmt: skip


def _set_all(sessions: sessionmaker[Session], state: TaskState) -> None:
    with sessions.begin() as session:
        session.execute(update(TaskInstance).values(state=state, try_number=1))


def _states(sessions: sessionmaker[Session]) -> dict[str, int]:
    with sessions() as session:
        states = session.scalars(select(TaskInstance.state)).all()
    return {s: states.count(s) for s in set(states)}


def test_a_run_waiting_on_its_running_tasks_is_left_alone_until_one_waits(
    session_factory: sessionmaker[Session],
) -> None:
    _fan_out(session_factory)
    dags = DagCache()
    with session_factory.begin() as session:
        step_active_runs(session, dags, now=NOW)
    assert _states(session_factory) == {"scheduled": WIDTH}
    _set_all(session_factory, TaskState.RUNNING)
    with session_factory.begin() as session:
        assert step_active_runs(session, dags, now=NOW) == 0
    # one try failed with a retry left: the run is no longer settled
    with session_factory.begin() as session:
        session.execute(
            update(TaskInstance)
            .where(TaskInstance.task_id == "t007")
            .values(state=TaskState.UP_FOR_RETRY, next_try_at=NOW - timedelta(seconds=1))
        )
    with session_factory.begin() as session:
        assert step_active_runs(session, dags, now=NOW) == 1
    assert _states(session_factory) == {"running": WIDTH - 1, "scheduled": 1}
    _set_all(session_factory, TaskState.SUCCESS)
    with session_factory.begin() as session:
        step_active_runs(session, dags, now=NOW)
    with session_factory() as session:
        assert session.scalar(select(DagRun.state)) == "success"
