"""SQL functions that each supported database spells its own way.

Code outside this package builds statements from these and stays free of dialects: each
renders, per database, to what that database calls it. The stamps of the web views use
them (:mod:`cluster.web.stamps`): a row's text as hex digits and a column's values
joined into one string.

What can go wrong: the results agree within one database, not across databases (MySQL's
``hex`` writes capitals, PostgreSQL's ``encode`` small letters), so never compare what
two databases computed.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Float, String
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

#: what :class:`joined` puts between values: ``group_concat``'s default
JOIN_SEPARATOR = ","


class hex_text(FunctionElement[str]):
    """The hex digits of a text's UTF-8 bytes (``hex`` on MySQL and SQLite)."""

    type = String()
    name = "hex_text"
    inherit_cache = True


class joined(FunctionElement[str]):
    """The aggregate of a text column's values joined by :data:`JOIN_SEPARATOR`, in no
    particular order (``group_concat``; MySQL cuts it at ``group_concat_max_len``)."""

    type = String()
    name = "joined"
    inherit_cache = True


@compiles(hex_text)
def _hex(element: hex_text, compiler: SQLCompiler, **kw: Any) -> str:
    return f"hex({compiler.process(element.clauses, **kw)})"


@compiles(hex_text, "postgresql")
def _hex_postgres(element: hex_text, compiler: SQLCompiler, **kw: Any) -> str:
    return f"encode(convert_to({compiler.process(element.clauses, **kw)}, 'UTF8'), 'hex')"


@compiles(joined)
def _joined(element: joined, compiler: SQLCompiler, **kw: Any) -> str:
    return f"group_concat({compiler.process(element.clauses, **kw)})"


@compiles(joined, "postgresql")
def _joined_postgres(element: joined, compiler: SQLCompiler, **kw: Any) -> str:
    return f"string_agg({compiler.process(element.clauses, **kw)}, '{JOIN_SEPARATOR}')"


class seconds_between(FunctionElement[float]):
    """Seconds from the first datetime column to the second, as a float (``NULL`` if
    either is): a duration read without turning both ends into Python datetimes."""

    type = Float()
    inherit_cache = True


@compiles(seconds_between)
def _seconds_between(element: seconds_between, compiler: SQLCompiler, **kw: Any) -> str:
    start, end = (compiler.process(c, **kw) for c in element.clauses)
    return f"((julianday({end}) - julianday({start})) * 86400.0)"


@compiles(seconds_between, "mysql")
def _seconds_between_mysql(element: seconds_between, compiler: SQLCompiler, **kw: Any) -> str:
    start, end = (compiler.process(c, **kw) for c in element.clauses)
    return f"(TIMESTAMPDIFF(MICROSECOND, {start}, {end}) / 1000000.0)"


@compiles(seconds_between, "postgresql")
def _seconds_between_postgres(element: seconds_between, compiler: SQLCompiler, **kw: Any) -> str:
    start, end = (compiler.process(c, **kw) for c in element.clauses)
    return f"EXTRACT(EPOCH FROM ({end} - {start}))"
