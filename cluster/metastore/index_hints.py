"""Index hints for MySQL and MariaDB: read a table along a named index.

MariaDB weighs every index that could serve a condition, with an index dive per range
per index. For a statement of a hundred OR-ed ranges over ``dag_run`` (the DAGs page's
recent runs) that weighing cost more server time than reading the rows; naming the
index skips it. The hint renders only for MySQL and MariaDB (``FORCE INDEX``); other
dialects get the statement unchanged. PostgreSQL has no hints and needs none: its
planner reads such a statement as a ``BitmapOr`` of one range of the same index per
``OR`` branch (tests/integration/test_metastore_postgres.py checks the plans of the hot
queries).

What can go wrong: a hint that names an index a migration dropped or renamed makes the
statement fail on MySQL; :func:`along_index` therefore takes the index from the
model's own table, and raises :class:`KeyError` at build time when it is not there.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import FromClause, Select, Table

#: dialect names that understand ``FORCE INDEX``
MYSQL_DIALECTS = ("mysql", "mariadb")


def along_index(
    statement: Select[*tuple[Any, ...]], table: FromClause, index_name: str
) -> Select[*tuple[Any, ...]]:
    """``statement`` reading ``table`` through its index ``index_name`` on MySQL/MariaDB.

    :raises KeyError: when ``table`` is not a table with an index of that name.
    """
    indexes = table.indexes if isinstance(table, Table) else set()
    if index_name not in {index.name for index in indexes}:
        raise KeyError(f"{table} is not a table with an index {index_name}")
    for dialect in MYSQL_DIALECTS:
        statement = statement.with_hint(table, f"FORCE INDEX ({index_name})", dialect)
    return statement
