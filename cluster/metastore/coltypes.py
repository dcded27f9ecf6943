"""Column types shared by the models and the migrations.

They hide the differences between SQLite, MySQL/MariaDB and PostgreSQL: timestamps are
stored as UTC with microseconds (naive ``DATETIME(6)`` on MySQL, ``TIMESTAMP WITH TIME
ZONE`` on PostgreSQL) and come back timezone-aware in UTC; identifiers are
case-sensitive everywhere (``*_bin`` collations on MySQL, where the default collations
ignore case; PostgreSQL and SQLite compare bytes); long text is ``LONGTEXT`` on MySQL,
whose ``TEXT`` stops at 64 KiB (PostgreSQL's ``TEXT`` has no such limit). JSON is kept
as text on every database: nothing queries inside it, and the same text comes back
everywhere. Migrations import these types too, so a change here is a schema change and
needs a revision (a PostgreSQL-only variant changes no existing schema).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Dialect, String, Text
from sqlalchemy.dialects import mysql
from sqlalchemy.types import TypeDecorator, TypeEngine

#: length of dag, run and task ids, as in Airflow
ID_LEN = 250

_MYSQL = ("mysql", "mariadb")
_POSTGRES = "postgresql"


def utcnow() -> datetime:
    """The current time, timezone-aware UTC: the default of every timestamp column."""
    return datetime.now(UTC)


def string_id(length: int = ID_LEN) -> TypeEngine[str]:
    """A dag, run or task id: case-sensitive, and narrow enough on MySQL for indexes.

    MySQL limits an index key to 3072 bytes; four ids of 250 characters in utf8mb4
    (4 bytes each) would not fit the ``xcom`` and ``task_instance`` keys, so ids use
    ``utf8mb3_bin`` there, as Airflow does.
    """
    variant = mysql.VARCHAR(length, charset="utf8mb3", collation="utf8mb3_bin")
    return String(length).with_variant(variant, *_MYSQL)


def string_key(length: int = 250) -> TypeEngine[str]:
    """A user-chosen name (variable key, conn id, pool, username): case-sensitive."""
    return String(length).with_variant(mysql.VARCHAR(length, collation="utf8mb4_bin"), *_MYSQL)


def long_text() -> TypeEngine[str]:
    """Text that may exceed 64 KiB (serialized DAGs, source code, stack traces)."""
    return Text().with_variant(mysql.LONGTEXT(), *_MYSQL)


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp stored as UTC with microseconds and returned aware in UTC.

    Naive datetimes are refused: guessing their zone is how schedules drift by hours.
    PostgreSQL gets the instant with its zone (``timestamptz``) and answers in the
    session's time zone, whatever it is: the value is converted back to UTC, so no
    session setting matters (PgBouncer's transaction pooling shares sessions).
    """

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name in _MYSQL:
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        if dialect.name == _POSTGRES:
            return dialect.type_descriptor(DateTime(timezone=True))
        return dialect.type_descriptor(DateTime())

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {value!r}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: pass a timezone-aware datetime")
        utc = value.astimezone(UTC)
        # a plain datetime: drivers do not all accept subclasses (pendulum)
        return datetime(
            utc.year,
            utc.month,
            utc.day,
            utc.hour,
            utc.minute,
            utc.second,
            utc.microsecond,
            tzinfo=UTC if dialect.name == _POSTGRES else None,
        )

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is not None:  # PostgreSQL: in the session's time zone
            return value.astimezone(UTC)
        return value.replace(tzinfo=UTC)


class JsonText(TypeDecorator[Any]):
    """A JSON document kept as text (``dag.tags``, ``dag_run.conf``, ``extra``, ...).

    Plain text rather than a native JSON column keeps SQLite, MySQL and PostgreSQL
    identical (PostgreSQL's ``json`` would also be text, ``jsonb`` would reorder keys).
    In-place changes of a loaded value are not tracked: assign a new value.
    """

    impl = Text
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name in _MYSQL:
            return dialect.type_descriptor(mysql.LONGTEXT())
        return dialect.type_descriptor(Text())

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return json.dumps(value, sort_keys=True, default=str)

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        return json.loads(value)
