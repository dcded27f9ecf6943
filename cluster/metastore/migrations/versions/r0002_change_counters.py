"""Change counters: one row per table that the DAGs page shows, bumped by triggers.

A webserver reuses a DAGs page it built while these counters are unchanged. Reading
three tiny rows replaces re-reading the codes of every shown row (about as costly as
building the page again). The triggers fire only when a column the page shows
changes: not on ``dag.last_parsed_at`` (every parse) nor ``dag_run``'s scheduling
bookkeeping, and never on ``task_instance`` (the scheduler's hot path).

Everything here is frozen at this revision: later code may watch more columns only by
a new migration.

PostgreSQL's triggers run one plpgsql function, :data:`PG_FUNCTION`, that bumps the
counter of the table that fired it; an update counts only when a watched column is in
the statement's ``SET`` (``UPDATE OF``) and really changed (``IS DISTINCT FROM``).

What can go wrong: creating triggers needs the ``TRIGGER`` privilege (the metastore
role grants ``ALL`` on the database); on a MySQL/MariaDB server with binary logging
on, also ``SUPER`` or ``log_bin_trust_function_creators = 1``; on PostgreSQL, the right
to create a function in the schema (the database's owner has it). Each counter row is
locked by the transaction that bumped it until it commits, so writers of the same
table queue on it (the scheduler's writes are serialized by its lease anyway); two
writers touching ``dag`` and ``dag_run`` in opposite orders can deadlock, which
:func:`cluster.metastore.engine.transaction` retries.

Revision ID: 0002
Revises: 0001
Create Date: 2025-11-21
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

MYSQL_TABLE_ARGS: dict[str, Any] = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_unicode_ci",
}
#: per counted table, the columns whose change bumps its counter on UPDATE (``None``:
#: only INSERT and DELETE count: the page shows how many rows there are)
WATCHED: dict[str, tuple[str, ...] | None] = {
    "dag": (
        "dag_id",
        "is_paused",
        "is_active",
        "tags",
        "owners",
        "timetable_summary",
        "next_dagrun",
    ),
    "dag_run": ("dag_id", "run_id", "state", "logical_date"),
    "import_error": None,
}
_MYSQL = ("mysql", "mariadb")
#: PostgreSQL: the function every counting trigger runs
PG_FUNCTION = "tw_count_change"


def upgrade() -> None:
    op.create_table(
        "change_counter",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("changes", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_change_counter")),
        **MYSQL_TABLE_ARGS,
    )
    counter = sa.table("change_counter", sa.column("name", sa.String), sa.column("changes"))
    op.bulk_insert(counter, [{"name": table, "changes": 0} for table in WATCHED])
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute(PG_FUNCTION_SQL)
    for table, columns in WATCHED.items():
        if dialect == "postgresql":
            statements = pg_trigger_statements(table, columns)
        else:
            statements = trigger_statements(table, columns, mysql=dialect in _MYSQL)
        for statement in statements:
            op.execute(statement)


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for table, columns in WATCHED.items():
        for event in _events(columns):
            on_table = f" ON {table}" if postgres else ""
            op.execute(f"DROP TRIGGER IF EXISTS {_trigger_name(table, event)}{on_table}")
    if postgres:
        op.execute(f"DROP FUNCTION IF EXISTS {PG_FUNCTION}()")
    op.drop_table("change_counter")


#: the function of PostgreSQL's counting triggers: bumps the counter named after the
#: table that fired it (``OR REPLACE``: ``tradewind db reset`` drops tables, not functions)
PG_FUNCTION_SQL = f"""CREATE OR REPLACE FUNCTION {PG_FUNCTION}() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE change_counter SET changes = changes + 1 WHERE name = TG_TABLE_NAME;
    RETURN NULL;
END
$$"""


def pg_trigger_statements(table: str, columns: tuple[str, ...] | None) -> list[str]:
    """PostgreSQL's ``CREATE TRIGGER`` statements for ``table``: row triggers running
    :data:`PG_FUNCTION`; an update's only when a watched column changed."""
    statements = []
    for event in _events(columns):
        head = f"CREATE TRIGGER {_trigger_name(table, event)} AFTER {event}"
        if event == "UPDATE" and columns is not None:
            changed = " OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in columns)
            head = f"{head} OF {', '.join(columns)} ON {table} FOR EACH ROW WHEN ({changed})"
        else:
            head = f"{head} ON {table} FOR EACH ROW"
        statements.append(f"{head} EXECUTE FUNCTION {PG_FUNCTION}()")
    return statements


def trigger_statements(table: str, columns: tuple[str, ...] | None, *, mysql: bool) -> list[str]:
    """``CREATE TRIGGER`` statements bumping ``table``'s counter after each changed row.

    MySQL has no ``UPDATE OF`` nor ``WHEN``: its update trigger compares the columns
    itself, as binary strings (the default collation ignores case) and NULL-safe.
    """
    bump = f"UPDATE change_counter SET changes = changes + 1 WHERE name = '{table}'"
    statements = []
    for event in _events(columns):
        head = f"CREATE TRIGGER {_trigger_name(table, event)} AFTER {event} ON {table} FOR EACH ROW"
        if event != "UPDATE" or columns is None:
            body = bump if mysql else f"BEGIN {bump}; END"
        elif mysql:
            same = " AND ".join(
                f"CAST(NEW.{c} AS BINARY) <=> CAST(OLD.{c} AS BINARY)" for c in columns
            )
            body = f"BEGIN IF NOT ({same}) THEN {bump}; END IF; END"
        else:
            changed = " OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in columns)
            body = f"WHEN {changed} BEGIN {bump}; END"
        statements.append(f"{head} {body}")
    return statements


def _events(columns: tuple[str, ...] | None) -> tuple[str, ...]:
    return ("INSERT", "DELETE") if columns is None else ("INSERT", "UPDATE", "DELETE")


def _trigger_name(table: str, event: str) -> str:
    return f"trg_{table}_{event.lower()}_counted"
