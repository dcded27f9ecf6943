"""Statements compiled once to text run as the statements themselves would."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import bindparam, func, literal, select
from sqlalchemy.dialects.mysql.pymysql import MySQLDialect_pymysql

from cluster.metastore.engine import SessionFactory
from cluster.metastore.index_hints import along_index
from cluster.metastore.models import Dag, DagRun
from cluster.web.prepared import execute, prepared

WHEN = datetime(2024, 1, 1, 6, tzinfo=UTC)


def test_a_prepared_statement_keeps_its_constants_types_and_columns(
    factory: SessionFactory,
) -> None:
    with factory.begin() as session:
        session.add(Dag(dag_id="a", fileloc="/dags/a.py"))
        session.add(DagRun(dag_id="a", run_id="r1", logical_date=WHEN, run_type="manual"))
    statement = select(
        DagRun.run_id, DagRun.logical_date, literal("50%|~").label("constant")
    ).where(DagRun.dag_id == bindparam("dag_id"), DagRun.logical_date >= bindparam("since"))
    with factory() as session:
        plain = session.execute(statement, {"dag_id": "a", "since": WHEN}).all()
        rows = execute(session, statement, {"dag_id": "a", "since": WHEN}).all()
        none = execute(session, statement, {"dag_id": "a", "since": WHEN.replace(hour=7)}).all()
    assert rows == plain == [("r1", WHEN, "50%|~")], "aware datetimes in and out, % kept"
    assert rows[0].constant == "50%|~"
    assert none == []


def test_a_statement_is_prepared_once_per_dialect(factory: SessionFactory) -> None:
    statement = select(func.count()).select_from(Dag)
    with factory() as session:
        dialect = session.connection().dialect
        assert prepared(statement, dialect) is prepared(statement, dialect)


def test_expanding_parameters_are_refused(factory: SessionFactory) -> None:
    statement = select(Dag.dag_id).where(Dag.dag_id.in_(bindparam("ids", expanding=True)))
    with factory() as session, pytest.raises(ValueError, match="'ids' expands"):
        execute(session, statement, {"ids": ["a"]})


def test_index_hints_render_for_mysql_only(factory: SessionFactory) -> None:
    hinted = along_index(select(DagRun.id), DagRun.__table__, "idx_dag_run_dag_id_logical_date")
    assert "FORCE INDEX (idx_dag_run_dag_id_logical_date)" in str(
        hinted.compile(dialect=MySQLDialect_pymysql())
    )
    with factory() as session:
        assert "FORCE" not in str(hinted.compile(dialect=session.connection().dialect))
        assert execute(session, hinted).all() == []
    with pytest.raises(KeyError, match="idx_nope"):
        along_index(select(DagRun.id), DagRun.__table__, "idx_nope")
