"""Tradewind behind PgBouncer in transaction pooling mode: a real scheduler, its pool
processes (or Celery workers) and every try reach PostgreSQL only through a private
``pgbouncer``.

Transaction pooling hands each transaction whatever server connection is free, so
anything a process left in its session (a SET, a prepared statement, a session lock)
would surface in another process's transaction. A small DAG that runs to success here,
every try exactly once, is the proof that nothing relies on it; the pool's counters
say how few server connections the whole deployment needed.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select, text

from cluster.config import MetastoreSettings
from cluster.devcluster.services.pgbouncer import PgBouncer
from cluster.devcluster.services.ports import free_port
from cluster.devcluster.services.postgres import PostgreSQL
from cluster.devcluster.services.rabbitmq import RabbitMQCluster
from cluster.metastore.engine import create_engine_for, make_session_factory
from cluster.metastore.migrate import migrate
from cluster.metastore.models import SlotPool
from tests.integration.celery_harness import CeleryDeployment, start_rabbitmq
from tests.integration.scheduler_harness import (
    SchedulerProcess,
    cli_env,
    history,
    task_states,
    tradewind,
    wait_for_dags,
    wait_for_run,
)

pytestmark = pytest.mark.postgres

#: server connections PgBouncer may open to the database
POOL_SIZE = 6

DAG = """
from datetime import datetime
from cluster.sdk import DAG
from cluster.operators.bash import BashOperator
from cluster.operators.python import PythonOperator


def produce(ti):
    ti.xcom_push(key="n", value=ti.task_id)


def consume(ti):
    seen = [ti.xcom_pull(task_ids=f"produce_{n}", key="n") for n in range(10)]
    assert seen == [f"produce_{n}" for n in range(10)], seen


with DAG("bounced", schedule=None, start_date=datetime(2024, 1, 1), max_active_tasks=64):
    producers = [PythonOperator(task_id=f"produce_{n}", python_callable=produce) for n in range(10)]
    sleepers = [BashOperator(task_id=f"sleep_{n}", bash_command="sleep 0.2") for n in range(20)]
    producers >> PythonOperator(task_id="consume", python_callable=consume) >> sleepers
"""


WIDE = """
from datetime import datetime
from cluster.sdk import DAG
from cluster.operators.python import PythonOperator


def noop():
    return None


with DAG("bounced_wide", schedule=None, start_date=datetime(2024, 1, 1), max_active_tasks=1000):
    for n in range(500):
        PythonOperator(task_id=f"t{n:03d}", python_callable=noop)
"""
CELERY_WORKERS = {"127.0.2.1": "default", "127.0.2.2": "default"}


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RabbitMQCluster]:
    cluster = start_rabbitmq(tmp_path_factory.mktemp("pgbouncer_rabbitmq"), nodes=1)
    yield cluster
    cluster.stop()


@pytest.fixture
def bouncer(postgres: PostgreSQL, tmp_path: Path) -> Iterator[PgBouncer]:
    server = PgBouncer(
        tmp_path / "pgbouncer", postgres, port=free_port(), pool_size=POOL_SIZE,
        idle_transaction_timeout=30,
    )  # fmt: skip
    server.start()
    yield server
    server.destroy()


@pytest.fixture
def bounced_url(postgres: PostgreSQL, bouncer: PgBouncer) -> Iterator[tuple[str, str]]:
    """A fresh database, and its URL through PgBouncer."""
    name = f"tw_{uuid.uuid4().hex[:12]}"
    postgres.create_database(name)
    yield name, bouncer.url_for(name)
    if postgres.alive():
        postgres.drop_database(name)


def test_statements_are_never_prepared_on_the_server(bounced_url: tuple[str, str]) -> None:
    """psycopg prepares a statement run five times; PgBouncer's next server would not
    know it. With ``metastore.pgbouncer`` nothing is prepared, however often it runs."""
    _, url = bounced_url
    engine = create_engine_for(MetastoreSettings(url=url, pgbouncer=True, pool_size=2))
    try:
        migrate(engine)
        sessions = make_session_factory(engine)
        for _ in range(20):
            with sessions.begin() as session:
                assert session.scalar(select(SlotPool.slots)) == 128
                prepared = session.scalar(text("SELECT count(*) FROM pg_prepared_statements"))
                assert prepared == 0
        with engine.connect() as connection:
            assert connection.connection.dbapi_connection.prepare_threshold is None  # type: ignore[union-attr]
    finally:
        engine.dispose()


def test_a_scheduler_and_its_tries_run_a_dag_through_pgbouncer(
    bounced_url: tuple[str, str], bouncer: PgBouncer, tmp_path: Path
) -> None:
    database, url = bounced_url
    home = tmp_path / "home"
    (home / "dags").mkdir(parents=True)
    (home / "dags" / "bounced.py").write_text(DAG)
    env = cli_env(
        home, url, Fernet.generate_key().decode(), METASTORE__PGBOUNCER="true",
        CORE__PARALLELISM=8,
    )  # fmt: skip
    tradewind(env, "db", "migrate")  # through PgBouncer too: its lock is transaction-level
    engine = create_engine_for(MetastoreSettings(url=url, pgbouncer=True))
    sessions = make_session_factory(engine)
    scheduler = SchedulerProcess(env, tmp_path / "scheduler.log").start()
    try:
        wait_for_dags(sessions, {"bounced"})
        run_id = f"manual__{uuid.uuid4().hex[:12]}"
        tradewind(env, "dags", "trigger", "bounced", "--run-id", run_id)
        state = wait_for_run(sessions, "bounced", run_id, timeout=120, scheduler=scheduler)
        assert state == "success", task_states(sessions, "bounced", run_id)
        tries = Counter(
            (row.task_id, row.try_number) for row in history(sessions, "bounced", run_id)
        )
        assert len(tries) == 31 and set(tries.values()) == {1}, tries
        clients, servers = connections(bouncer, database)
        print(f"through PgBouncer: {clients} client connections, {servers} server connections")
        assert 0 < servers <= POOL_SIZE and servers < clients
    finally:
        scheduler.stop()
        engine.dispose()


def connections(bouncer: PgBouncer, database: str) -> tuple[int, int]:
    """``(client, server)`` connections PgBouncer holds for ``database``."""
    pools = [p for p in bouncer.show("POOLS") if p["database"] == database]
    clients = sum(int(p["cl_active"]) + int(p["cl_waiting"]) for p in pools)
    return clients, bouncer.server_connections(database)


def test_a_500_task_celery_run_through_pgbouncer(
    bounced_url: tuple[str, str], bouncer: PgBouncer, broker: RabbitMQCluster, tmp_path: Path
) -> None:
    """The scheduler and two Celery workers of four pool processes each, all through
    PgBouncer: every one of 500 tries runs once, on a handful of server connections."""
    database, url = bounced_url
    deployment = CeleryDeployment(
        tmp_path / "deployment", metastore_url=url, broker_urls=broker.urls,
        dags={"bounced_wide.py": WIDE}, workers=CELERY_WORKERS, concurrency=4,
        METASTORE__PGBOUNCER="true",
    )  # fmt: skip
    try:
        deployment.start({"bounced_wide"})
        run_id = deployment.trigger("bounced_wide")
        assert deployment.wait_for_run("bounced_wide", run_id, timeout=600) == "success"
        rows = history(deployment.sessions, "bounced_wide", run_id)
        tries = Counter((row.task_id, row.try_number) for row in rows)
        assert len(tries) == 500 and set(tries.values()) == {1}
        clients, servers = connections(bouncer, database)
        print(f"500 Celery tries through PgBouncer: {clients} clients, {servers} servers")
        assert 0 < servers <= POOL_SIZE and servers < clients
    finally:
        deployment.stop()
