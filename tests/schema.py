"""The migrated schema against the models, on any backend, DESC index columns included.

Alembic's comparison reads the database's indexes through SQLAlchemy's reflection,
which on SQLite and MariaDB does not report an index column's sort order: an index
with a ``DESC`` column (``idx_ti_state_pool_priority``, migration 0011) then shows as one
index to remove and one to add although the two are the same. Such a pair is checked
here against what the database itself says of each column (``PRAGMA index_xinfo``,
``information_schema.STATISTICS``) and dropped only when the columns and their order
match; any other difference is returned as Alembic reports it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, Engine, Index, UnaryExpression, insert, inspect, select, text
from sqlalchemy.sql import operators

from cluster.metastore.migrate import alembic_config, migrate
from cluster.metastore.models import DAG_RUN, TASK_INSTANCE, Base

TI = TASK_INSTANCE
OLD, NEW = datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 2, tzinfo=UTC)

_MYSQL_SORTING = text(
    "SELECT column_name, collation FROM information_schema.statistics"
    " WHERE table_schema = DATABASE() AND index_name = :name ORDER BY seq_in_index"
)


def schema_differences(connection: Connection) -> list[Any]:
    """Alembic's differences between the database and the models, less DESC look-alikes."""
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "compare_server_default": True}
    )
    differences = compare_metadata(context, Base.metadata)
    added = {d[1].name: d[1] for d in differences if d[0] == "add_index"}
    same = {
        name
        for name, index in added.items()
        if ("remove_index", name) in {(d[0], d[1].name) for d in differences}
        and model_sorting(index) == database_sorting(connection, name)
    }
    return [
        d for d in differences if not (d[0] in ("add_index", "remove_index") and d[1].name in same)
    ]


def model_sorting(index: Index) -> list[tuple[str, bool]]:
    """``(column, descending)`` of each of the model index's columns."""
    columns = []
    for expression in index.expressions:
        descending = (
            isinstance(expression, UnaryExpression) and expression.modifier is operators.desc_op
        )
        element = expression.element if isinstance(expression, UnaryExpression) else expression
        columns.append((str(getattr(element, "name", element)), descending))
    return columns


def database_sorting(connection: Connection, name: str) -> list[tuple[str, bool]] | None:
    """``(column, descending)`` of the database index ``name``, as the database says."""
    dialect = connection.dialect.name
    if dialect == "sqlite":
        rows = connection.exec_driver_sql(f"PRAGMA index_xinfo('{name}')").all()
        return [(row[2], bool(row[3])) for row in rows if row[5]]  # row[5]: a key column
    if dialect in ("mysql", "mariadb"):
        rows = connection.execute(_MYSQL_SORTING, {"name": name}).all()
        return [(row[0], row[1] == "D") for row in rows]
    return None  # PostgreSQL reflects the order itself: never a look-alike


def check_run_date_migration(engine: Engine) -> None:
    """Migration 0010 on ``engine`` (an empty database): upgraded from 0009, a run's
    instances get its logical date and the index appears; downgraded, both are gone."""
    migrate(engine, to="0009")
    with engine.begin() as connection:
        connection.execute(
            insert(DAG_RUN),
            [
                {"dag_id": "d", "run_id": r, "run_type": "manual", "logical_date": date}
                for r, date in (("old", OLD), ("new", NEW))
            ],
        )
        connection.execute(
            text(
                "INSERT INTO task_instance (dag_id, run_id, task_id, map_index, try_number,"
                " max_tries, state, pool, pool_slots, queue, priority_weight) VALUES"
                " ('d', :run_id, 't', -1, 0, 0, 'scheduled', 'default_pool', 1, 'default', 1)"
            ),
            [{"run_id": "old"}, {"run_id": "new"}],
        )
    migrate(engine, to="0010")
    with engine.connect() as connection:
        dates = dict(connection.execute(select(TI.c.run_id, TI.c.run_logical_date)).all())
        assert dates == {"old": OLD, "new": NEW}
        assert "idx_ti_state_priority" in {
            i["name"] for i in inspect(connection).get_indexes("task_instance")
        }
    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), "0009")
    with engine.connect() as connection:
        ti = inspect(connection)
        assert "run_logical_date" not in {c["name"] for c in ti.get_columns("task_instance")}
        assert "idx_ti_state_priority" not in {i["name"] for i in ti.get_indexes("task_instance")}
    migrate(engine)
    check_pool_priority_migration(engine)


def check_pool_priority_migration(engine: Engine) -> None:
    """Migration 0011 on ``engine`` (at the head): the pool-ordered index replaces the two
    it covers; downgraded to 0010 they come back; upgraded again, the head's indexes."""
    replaced = {"idx_ti_state_priority", "idx_ti_state_pool"}
    with engine.connect() as connection:
        names = {i["name"] for i in inspect(connection).get_indexes("task_instance")}
    assert "idx_ti_state_pool_priority" in names and not names & replaced, names
    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), "0010")
    with engine.connect() as connection:
        names = {i["name"] for i in inspect(connection).get_indexes("task_instance")}
    assert "idx_ti_state_pool_priority" not in names and replaced <= names, names
    migrate(engine)
