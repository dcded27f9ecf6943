"""Queueing beside a blocked backlog: what cannot be queued now is not read.

A full pool's scheduled tries (Airflow's starved pools) are not read at all: the
database does the same work beside 2,000 of them as beside 20. A DAG at its
``max_active_tasks`` (Airflow's starved DAGs) is passed over in the database, so none
of its tries reaches the scheduler. The work is counted as each database can: SQLite's
virtual-machine instructions, MariaDB's ``Handler_read_*`` of the session, PostgreSQL's
rows fetched in the transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select, text
from sqlalchemy.orm import Session, sessionmaker

from cluster.dagfiles.serialized import SerializedDag, SerializedTask
from cluster.metastore.models import Dag, DagRun, SerializedDagRow, TaskInstance
from cluster.metastore.pools import set_pool
from cluster.scheduler.dagcache import DagCache
from cluster.scheduler.queueing import _scheduled, queue_ready

NOW = datetime(2024, 5, 1, 12, tzinfo=UTC)

_MYSQL_READS = text(
    "SELECT SUM(variable_value) FROM information_schema.session_status"
    " WHERE variable_name LIKE 'HANDLER_READ%'"
)
_POSTGRES_READS = text(
    "SELECT COALESCE(SUM(seq_tup_read), 0) + COALESCE(SUM(idx_tup_fetch), 0)"
    " FROM pg_stat_xact_user_tables WHERE relname = 'task_instance'"
)


def _add_dag(session: Session, dag_id: str, *, max_active_tasks: int, pool: str) -> None:
    dag = SerializedDag(
        dag_id=dag_id,
        fileloc="/dev/null",
        timetable={"type": "null"},
        schedule=None,
        max_active_tasks=max_active_tasks,
        tasks={"t": SerializedTask(task_id="t", operator="BashOperator", pool=pool)},
    )
    session.add(Dag(dag_id=dag_id, fileloc="/dev/null", fingerprint=dag.fingerprint()))
    session.add(
        SerializedDagRow(
            dag_id=dag_id, fileloc="/dev/null", data=dag.to_json(), fingerprint=dag.fingerprint()
        )
    )
    session.execute(
        insert(DagRun).values(
            dag_id=dag_id, run_id="r", run_type="manual", state="running", conf={},
            logical_date=NOW,
        )
    )  # fmt: skip


def _add_tries(
    session: Session, dag_id: str, pool: str, states: list[str], *, weight: int, start: int = 0
) -> None:
    session.execute(
        insert(TaskInstance),
        [
            {"dag_id": dag_id, "run_id": "r", "task_id": f"t{start + i:05d}", "state": state,
             "pool": pool, "priority_weight": weight, "run_logical_date": NOW}
            for i, state in enumerate(states)
        ],
    )  # fmt: skip


def _seed(session: Session) -> None:
    """``narrow`` (pool of one slot, taken), ``capped`` (max_active_tasks=1, one running),
    and ``free``: three lighter tries that may all be queued."""
    set_pool("narrow", 1, session=session)
    _add_dag(session, "narrow", max_active_tasks=100_000, pool="narrow")
    _add_dag(session, "capped", max_active_tasks=1, pool="default_pool")
    _add_dag(session, "free", max_active_tasks=100, pool="default_pool")
    _add_tries(session, "narrow", "narrow", ["queued"], weight=10)
    _add_tries(session, "capped", "default_pool", ["running"], weight=10)
    _add_tries(session, "free", "default_pool", ["scheduled"] * 3, weight=1)


def _add_backlog(session: Session, dag_id: str, pool: str, count: int, start: int) -> None:
    _add_tries(session, dag_id, pool, ["scheduled"] * count, weight=10, start=start)


def _reads(session: Session) -> Callable[[], float]:
    """A function giving the database's work so far on this session's connection."""
    connection = session.connection()
    dialect = connection.dialect.name
    if dialect == "sqlite":
        steps = [0]

        def step() -> int:
            steps[0] += 1
            return 0

        connection.connection.dbapi_connection.set_progress_handler(step, 100)  # type: ignore[union-attr]
        return lambda: float(steps[0])
    query = _MYSQL_READS if dialect == "mysql" else _POSTGRES_READS
    return lambda: float(connection.execute(query).scalar() or 0)


def _queue_and_count(sessions: sessionmaker[Session]) -> tuple[list[str], float]:
    """One queueing step, rolled back: the tries it queued and the database's work."""
    with sessions() as session:
        reads = _reads(session)
        before = reads()
        dispatches = queue_ready(
            session, DagCache(), now=NOW, epoch=1, parallelism=32, executor_free=None
        )
        work = reads() - before
        session.rollback()
    return sorted(f"{d.message.dag_id}.{d.message.task_id}" for d in dispatches), work


def test_a_full_pool_s_backlog_is_not_read(session_factory: sessionmaker[Session]) -> None:
    """Before, the first 32 tries were all blocked, so every iteration read all 2,000."""
    with session_factory.begin() as session:
        _seed(session)
        _add_backlog(session, "narrow", "narrow", 20, start=1)
    small_queued, small = _queue_and_count(session_factory)
    with session_factory.begin() as session:
        _add_backlog(session, "narrow", "narrow", 1980, start=21)
    big_queued, big = _queue_and_count(session_factory)
    free = ["free.t00000", "free.t00001", "free.t00002"]
    assert small_queued == big_queued == free
    assert big <= small * 1.5 + 20, (small, big)


def test_a_dag_at_its_limit_reaches_the_scheduler_with_none_of_its_tries(
    session_factory: sessionmaker[Session],
) -> None:
    with session_factory.begin() as session:
        _seed(session)
        _add_backlog(session, "capped", "default_pool", 2000, start=1)
    queued, _ = _queue_and_count(session_factory)
    assert queued == ["free.t00000", "free.t00001", "free.t00002"]
    with session_factory() as session:
        rows = _scheduled(session, 32, pools=["default_pool"], starved=["capped"])
        assert [r.dag_id for r in rows] == ["free"] * 3


def test_the_best_tries_of_every_open_pool_come_in_one_order(
    session_factory: sessionmaker[Session],
) -> None:
    """Read pool by pool, the tries still come highest weight first across pools, and
    the limit holds over all of them."""
    with session_factory.begin() as session:
        set_pool("a", 5, session=session)
        set_pool("b", 5, session=session)
        _add_dag(session, "d", max_active_tasks=100, pool="a")
        session.execute(
            insert(TaskInstance),
            [
                {"dag_id": "d", "run_id": "r", "task_id": f"{pool}{weight}", "state": "scheduled",
                 "pool": pool, "priority_weight": weight, "run_logical_date": NOW}
                for pool, weights in (("a", (9, 5, 1)), ("b", (8, 6, 2)), ("default_pool", (7,)))
                for weight in weights
            ],
        )  # fmt: skip
    with session_factory() as session:
        rows: list[Any] = list(_scheduled(session, 5, pools=["a", "b", "default_pool"]))
        everything = session.scalars(select(TaskInstance.task_id)).all()
    assert [r.task_id for r in rows] == ["a9", "b8", "default_pool7", "b6", "a5"]
    assert len(everything) == 7
