"""The same metastore behaviour on SQLite, MariaDB and PostgreSQL (each test runs on all three)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone

from cryptography.fernet import Fernet
from sqlalchemy import Engine, event, func, select
from sqlalchemy.orm import Session

from cluster.metastore.cleanup import clean
from cluster.metastore.connections import ConnectionRecord, add_connection, get_connection
from cluster.metastore.engine import SessionFactory, transaction
from cluster.metastore.migrate import check, migrate
from cluster.metastore.models import DagRun, TaskInstance, XCom
from cluster.metastore.pools import get_pool
from cluster.metastore.secrets import make_fernet, rotate_fernet_key
from cluster.metastore.transitions import (
    TaskKey,
    TryMove,
    move_tries,
    set_dag_run_state,
    set_task_state,
    set_task_states,
)
from cluster.metastore.triggers import Deferral, defer_try, fail, fire, load
from cluster.metastore.users import authenticate, create_user
from cluster.states import DagRunState, TaskState
from tests.schema import schema_differences

T0 = datetime(2025, 3, 30, 1, 59, 59, 999999, tzinfo=UTC)


def test_schema_matches_models_after_two_migrations(metastore_engine: Engine) -> None:
    migrate(metastore_engine)
    check(metastore_engine)
    with metastore_engine.connect() as connection:
        assert schema_differences(connection) == []


def test_default_pool_and_timestamps(session_factory: SessionFactory) -> None:
    with session_factory() as session, session.begin():
        assert get_pool("default_pool", session=session).slots == 128
        tz = timezone(timedelta(hours=-5))
        session.add(
            DagRun(dag_id="d", run_id="r", run_type="scheduled", logical_date=T0.astimezone(tz))
        )
    with session_factory() as session:
        run = session.scalars(select(DagRun)).one()
        assert run.logical_date == T0 and run.logical_date.tzinfo is UTC


def test_claims_and_bulk_moves(session_factory: SessionFactory) -> None:
    def setup(session: Session) -> None:
        session.add(DagRun(dag_id="d", run_id="r", run_type="manual"))
        for n in range(5):
            session.add(TaskInstance(dag_id="d", run_id="r", task_id=f"t{n}", state="scheduled"))

    transaction(session_factory, setup)
    keys = [TaskKey("d", "r", f"t{n}") for n in range(5)]
    with session_factory() as session, session.begin():
        assert set_task_states(session, keys, TaskState.QUEUED, values={"try_number": 1}) == 5
        assert set_task_state(session, keys[0], TaskState.RUNNING, try_number=1)
        assert not set_task_state(session, keys[0], TaskState.RUNNING, try_number=1)
        assert not set_task_state(session, keys[1], TaskState.RUNNING, try_number=2)
        assert set_dag_run_state(session, "d", "r", DagRunState.RUNNING)


def _ends(names: str) -> list[TryMove]:
    """Records of ``names`` (all try 1): ``b`` failed, ``a``'s duration an int."""
    return [
        TryMove(
            TaskKey("d", "r", name),
            1,
            TaskState.FAILED if name == "b" else TaskState.SUCCESS,
            {
                "end_date": T0 + timedelta(minutes=i),
                "duration": i if name == "a" else i + 0.5,
                "next_try_at": None,
                "rendered_fields": {"cmd": f"echo {name}", "n": i},
            },
        )
        for i, name in enumerate(names)
    ]


def test_a_batch_of_moves_writes_each_try_s_own_values_whatever_its_size(
    session_factory: SessionFactory,
) -> None:
    """Records of two tries, then three: each row gets its own state, end date, duration,
    JSON and NULL. PostgreSQL runs one statement text for both sizes (the per-try values
    go as arrays, so nothing is compiled, parsed or planned anew per size)."""

    def setup(session: Session) -> None:
        session.add(DagRun(dag_id="d", run_id="r", run_type="manual"))
        for name in "abcde":
            session.add(
                TaskInstance(dag_id="d", run_id="r", task_id=name, state="running", try_number=1)
            )
            session.flush()

    transaction(session_factory, setup)
    statements: list[str] = []
    engine = session_factory.kw["bind"]
    event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    with session_factory() as session, session.begin():
        first = move_tries(session, _ends("ab"), expected=TaskState.RUNNING, optimistic=True)
        assert first == [True, True]
        assert move_tries(session, _ends("cde"), expected=TaskState.RUNNING) == [True] * 3
    with session_factory() as session:
        columns = (TaskInstance.task_id, TaskInstance.state, TaskInstance.end_date)
        more = (TaskInstance.duration, TaskInstance.next_try_at, TaskInstance.rendered_fields)
        rows = session.execute(select(*columns, *more).order_by(TaskInstance.task_id)).all()
    assert [tuple(r) for r in rows] == [
        (name, "failed" if name == "b" else "success", T0 + timedelta(minutes=i),
         i if name == "a" else i + 0.5, None, {"cmd": f"echo {name}", "n": i})
        for name, i in (("a", 0), ("b", 1), ("c", 0), ("d", 1), ("e", 2))
    ]  # fmt: skip
    if engine.dialect.name == "postgresql":
        updates = [s for s in statements if s.startswith("UPDATE")]
        assert len(updates) == 2 and updates[0] == updates[1]


def test_secrets_users_and_cleanup(session_factory: SessionFactory) -> None:
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    with session_factory() as session, session.begin():
        add_connection(
            ConnectionRecord("c", "http", password="pw"),
            session=session,
            fernet=make_fernet(old_key),
        )
        create_user("ada", "pw", role="Admin", session=session)
        session.add(DagRun(dag_id="d", run_id="r", run_type="manual", state="success", end_date=T0))
        session.flush()
        session.add(TaskInstance(dag_id="d", run_id="r", task_id="t", state="success"))
        session.flush()
        session.add(XCom(dag_id="d", run_id="r", task_id="t", key="return_value", value="42"))
    with session_factory() as session, session.begin():
        assert rotate_fernet_key(session, make_fernet(f"{new_key},{old_key}")) == 1
        assert authenticate("ada", "pw", session=session, now=T0) is not None
        counts = clean(session=session, before=T0 + timedelta(days=1))
        assert counts["dag_run"] == counts["task_instance"] == counts["xcom"] == 1
    with session_factory() as session:
        assert get_connection("c", session=session, fernet=make_fernet(new_key)).password == "pw"
        assert session.scalar(select(func.count()).select_from(TaskInstance)) == 0


def test_racing_claims_through_the_transaction_helper(session_factory: SessionFactory) -> None:
    """SQLite answers a lost write race with "database is locked": the helper retries it."""
    attempts = 30

    def setup(session: Session) -> None:
        session.add(DagRun(dag_id="d", run_id="r", run_type="manual"))
        for n in range(attempts):
            session.add(
                TaskInstance(dag_id="d", run_id="r", task_id=f"t{n}", state="queued", try_number=1)
            )

    transaction(session_factory, setup)
    barrier = threading.Barrier(2)

    def claim(key: TaskKey) -> bool:
        def work(session: Session) -> bool:
            return set_task_state(session, key, TaskState.RUNNING, try_number=1)

        barrier.wait(timeout=10)
        return transaction(session_factory, work, retries=10, backoff=0.01)

    with ThreadPoolExecutor(max_workers=2) as pool:
        for n in range(attempts):
            key = TaskKey("d", "r", f"t{n}")
            assert sorted(pool.map(claim, [key, key])) == [False, True]


def test_an_event_reported_twice_at_once_resumes_its_try_once(
    session_factory: SessionFactory,
) -> None:
    """Two triggerers (a takeover) report the same trigger's event, or one reports the
    event while another reports a failure, in racing transactions: exactly one wins."""
    fernet = make_fernet(Fernet.generate_key().decode())
    rounds = 10
    deferral = Deferral(
        "cluster.triggers.temporal.DateTimeTrigger", {"moment": T0}, "done", {}, None
    )

    def setup(session: Session) -> list[int]:
        session.add(DagRun(dag_id="d", run_id="r", run_type="manual"))
        for n in range(rounds):
            session.add(
                TaskInstance(dag_id="d", run_id="r", task_id=f"t{n}", state="running", try_number=1)
            )
        session.flush()
        ids = []
        for n in range(rounds):
            key = TaskKey("d", "r", f"t{n}")
            ids.append(defer_try(session, key, 1, deferral, fernet=fernet, now=T0))
        return [i for i in ids if i is not None]

    trigger_ids = transaction(session_factory, setup)
    assert len(trigger_ids) == rounds
    with session_factory() as session:
        assert [row.kwargs for row in load(session, trigger_ids[:1], fernet=fernet)] == [
            {"moment": T0}
        ]
    barrier = threading.Barrier(2)

    def report(job: tuple[int, bool]) -> int:
        trigger_id, as_failure = job

        def work(session: Session) -> int:
            if as_failure:
                return fail(session, trigger_id, "Trigger failure", ["boom"])
            return fire(session, trigger_id, {"n": trigger_id})

        barrier.wait(timeout=10)
        return transaction(session_factory, work, retries=10, backoff=0.01)

    with ThreadPoolExecutor(max_workers=2) as pool:
        for n, trigger_id in enumerate(trigger_ids):
            jobs = [(trigger_id, False), (trigger_id, n % 2 == 1)]
            assert sorted(pool.map(report, jobs)) == [0, 1]
    with session_factory() as session:
        rows = session.scalars(select(TaskInstance)).all()
        assert {(ti.state, ti.try_number, ti.trigger_id) for ti in rows} == {("scheduled", 0, None)}
