"""Many DAGs due at once: each iteration creates one batch and the next one goes on at
once, instead of one batch per poll interval."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from cluster.config import Settings
from cluster.dagfiles.serialize import serialize_dag
from cluster.metastore.engine import transaction
from cluster.metastore.models import Dag, DagRun, SerializedDagRow
from cluster.operators.empty import EmptyOperator
from cluster.scheduler.fencing import Fence
from cluster.scheduler.loop import SchedulerLoop
from cluster.sdk import DAG

NOW = datetime(2024, 5, 1, 12, 30, tzinfo=UTC)


class NoExecutor:
    def start(self) -> None:
        pass

    def send(self, dispatches: object) -> None:
        pass

    def free_slots(self) -> int | None:
        return 0

    def stop(self, *, drain: bool) -> None:
        pass


def _hourly(sessions: sessionmaker[Session], count: int) -> None:
    with sessions.begin() as session:
        for n in range(count):
            with DAG(
                f"hourly_{n}", schedule="@hourly", start_date=datetime(2024, 1, 1), catchup=False
            ) as dag:
                EmptyOperator(task_id="t")
            serialized = serialize_dag(dag)
            fingerprint = serialized.fingerprint()
            session.add(
                Dag(
                    dag_id=dag.dag_id, fileloc="/dev/null", fingerprint=fingerprint, is_paused=False
                )
            )
            session.add(
                SerializedDagRow(
                    dag_id=dag.dag_id, fileloc="/dev/null", data=serialized.to_json(),
                    fingerprint=fingerprint,
                )
            )  # fmt: skip


def _runs(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(DagRun)) or 0


def test_a_full_batch_of_new_runs_lets_the_next_iteration_create_more_at_once(
    settings: Settings, session_factory: sessionmaker[Session]
) -> None:
    settings = settings.replace("scheduler", max_dagruns_to_create_per_loop=10)
    _hourly(session_factory, 25)
    fence = Fence(host="test")
    transaction(session_factory, lambda s: fence.acquire(s, now=NOW))
    loop = SchedulerLoop(
        settings, sessions=session_factory, executor=NoExecutor(), fence=fence, clock=lambda: NOW
    )
    loop.run_once()
    assert _runs(session_factory) == 10
    # the clock has not moved: without the full batch, creation would wait for a poll
    loop.run_once()
    assert _runs(session_factory) == 20
    loop.run_once()
    assert _runs(session_factory) == 25
