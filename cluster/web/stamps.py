"""Exact stamps of query results: has anything a view showed changed since it was built?

The busiest views (the DAG list of the API, the DAGs page) show a few hundred short
rows. Parsing those rows (PyMySQL decodes every field in Python) and turning them into
JSON or HTML cost most of such a request, while the rows themselves rarely change.
So each query of such a view selects one more column, :func:`row_code`: every shown
column as hex text, joined by ``|`` (``~`` for NULL). The codes of the rows a view was
built from are its *stamp*. The next request asks the database for the same query's
codes glued into one string (:func:`stamp_statement`, one row, one field: cheap to
parse) and reuses the view when the codes are the same.

Why it is exact: the codes are injective (hex has neither ``|``, ``~`` nor ``,``), a
stamp is read in the very statement that read the data it describes, and the
comparison is of the codes themselves, not of a hash or a "last changed" time that a
writer might forget to bump. Codes are compared sorted, as ``group_concat`` keeps no
order. What can go wrong: MySQL cuts ``group_concat`` at ``group_concat_max_len``
(MariaDB's default is 1 MiB, MySQL 8's 1 KiB); :func:`read_stamp` notices the cut and
returns ``None``, which callers treat as "changed", so a cut costs speed, never
correctness. ``hex`` and ``group_concat`` come from :mod:`cluster.metastore.sql_functions`,
which spells them for each database.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Label,
    SQLColumnExpression,
    String,
    case,
    cast,
    func,
    literal_column,
    select,
)
from sqlalchemy.orm import Session

from cluster.metastore.sql_functions import JOIN_SEPARATOR, hex_text, joined
from cluster.web.prepared import AnySelect, execute

#: the name of the code column in a view's queries
CODE = "row_code"
#: the code of a NULL value (hex digits never contain it)
NULL_CODE = "~"
#: what separates the columns of one row's code
COLUMN_SEPARATOR = "|"
#: what the joined codes have between rows
ROW_SEPARATOR = JOIN_SEPARATOR

#: the constants of a code, written into the SQL: as bound parameters, each request
#: escaped and sent some thirty of them
_SEPARATOR = literal_column(f"'{COLUMN_SEPARATOR}'", String)
_NULL = literal_column(f"'{NULL_CODE}'", String)

#: the codes of a result's rows, sorted
Stamp = tuple[str, ...]


def row_code(*columns: SQLColumnExpression[Any]) -> Label[str]:
    """One row's code: each of ``columns`` as hex of its text, ``~`` when NULL, joined by
    ``|``. Select it (as :data:`CODE`) along with the columns a view shows."""
    code: ColumnElement[str] = _column_code(columns[0])
    for column in columns[1:]:
        code = code + _SEPARATOR + _column_code(column)
    return code.label(CODE)


def _column_code(column: SQLColumnExpression[Any]) -> ColumnElement[str]:
    # CASE rather than coalesce(hex(...)): SQLite's hex(NULL) is '', the same as hex('')
    return case(
        (column.is_(None), _NULL),
        else_=hex_text(cast(column, String)),
    )


def stamp_statement(statement: AnySelect, *extras: ColumnElement[Any]) -> AnySelect:
    """The codes of ``statement``'s rows in one field, with what detects a cut, and the
    values of ``extras`` (scalar subqueries, e.g. a count of matches beyond a page).

    ``statement`` must select :func:`row_code`; its filters, order and limits stay.
    """
    coded = statement.subquery("coded")
    code = coded.c[CODE]
    return select(joined(code), func.sum(func.length(code)), func.count(), *extras)


def read_stamp(
    session: Session, statement: AnySelect, params: Mapping[str, Any] | None = None
) -> Stamp | None:
    """The current stamp of ``statement`` (one of :func:`stamp_statement`, built once
    and kept: it runs :func:`~cluster.web.prepared.prepared`), or ``None`` when the
    database cut it short: treat that as "changed"."""
    joined, length, count, *extras = execute(session, statement, params).one()
    if not count:
        return stamp_of((), extras)
    if joined is None or len(joined) != int(length) + count - 1:  # codes are ASCII
        return None
    return stamp_of(joined.split(ROW_SEPARATOR), extras)


def stamp_of(codes: Iterable[str], extras: Iterable[object] = ()) -> Stamp:
    """The stamp of rows read with their codes (and the values of the stamp statement's
    ``extras``): compare it with :func:`read_stamp`'s. Extras follow the sorted codes
    marked with ``=``, which no code contains, so neither can pass for the other."""
    return (*sorted(codes), *(f"={value}" for value in extras))
