"""Column types shared by the models and the migrations.

They hide the differences between SQLite and MySQL/MariaDB: timestamps are stored as
naive UTC with microseconds (``DATETIME(6)`` on MySQL) and come back timezone-aware;
identifiers are case-sensitive everywhere (``*_bin`` collations on MySQL, where the
default collations ignore case); long text is ``LONGTEXT`` on MySQL, whose ``TEXT``
stops at 64 KiB. Migrations import these types too, so a change here is a schema
change and needs a revision.
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
    """A timestamp stored as naive UTC with microseconds and returned aware in UTC.

    Naive datetimes are refused: guessing their zone is how schedules drift by hours.
    """

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name in _MYSQL:
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
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
            utc.year, utc.month, utc.day, utc.hour, utc.minute, utc.second, utc.microsecond
        )

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


class JsonText(TypeDecorator[Any]):
    """A JSON document kept as text (``dag.tags``, ``dag_run.conf``, ``extra``, ...).

    Plain text rather than a native JSON column keeps SQLite and MySQL identical.
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
