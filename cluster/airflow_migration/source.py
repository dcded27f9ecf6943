"""Reading an Airflow 2.x metastore: its URL, its tables by reflection, its values.

Nothing of Airflow is imported: the tables are reflected with SQLAlchemy Core, so any
Airflow 2.x schema that has the columns read here works, and a column Airflow added or
dropped between versions is read when present (``row.get``). Airflow stores timestamps
in UTC (on MySQL it sets the session's time zone to UTC; so do we); ``dag_run.conf``
is a pickle, read by an unpickler that admits no class at all, so a crafted row can
build nothing but plain dicts, lists, strings and numbers.
"""

from __future__ import annotations

import io
import json
import pickle
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, MetaData, Table, create_engine, event, func, select
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from cluster.errors import MetastoreError, UsageError

#: the tables read; the first four must exist (an Airflow 2.x metastore has them all)
REQUIRED = ("dag", "dag_run", "task_instance", "alembic_version")
OPTIONAL = (
    "task_instance_history",
    "task_fail",
    "dag_run_note",
    "task_instance_note",
    "task_map",
    "xcom",
    "variable",
    "connection",
    "slot_pool",
    "ab_user",
    "ab_role",
    "ab_user_role",
)
#: Airflow's drivers that Tradewind's own replace (same database, same SQL)
DRIVERS = {"mysql": "mysql+pymysql", "mariadb": "mysql+pymysql", "postgresql": "postgresql+psycopg"}


def source_url(url: str) -> URL:
    """Airflow's ``sql_alchemy_conn`` with Tradewind's driver for the same database
    (``mysql+mysqldb://`` → ``mysql+pymysql://``, ``postgresql+psycopg2://`` →
    ``postgresql+psycopg://``), so the URL can be pasted from airflow.cfg.

    :raises UsageError: for a malformed URL or a database other than MySQL/MariaDB or
        PostgreSQL.
    """
    try:
        parsed = make_url(url.replace("postgres://", "postgresql://", 1))
    except ArgumentError as exc:
        raise UsageError(f"SOURCE_URL is not a database URL: {exc}") from exc
    driver = DRIVERS.get(parsed.get_backend_name())
    if driver is None:
        raise UsageError(
            f"SOURCE_URL: unsupported database '{parsed.drivername}' "
            "(an Airflow metastore on MySQL/MariaDB or PostgreSQL)"
        )
    return parsed.set(drivername=driver)


class AirflowMetastore:
    """The reflected tables of one Airflow metastore, read-only."""

    def __init__(self, engine: Engine, tables: Mapping[str, Table], version: str) -> None:
        self.engine = engine
        self.tables = dict(tables)
        #: Airflow's Alembic revision (``alembic_version``)
        self.version = version

    def has(self, name: str) -> bool:
        return name in self.tables

    def rows(self, name: str, **equal: Any) -> list[dict[str, Any]]:
        """Every row of table ``name`` (``[]`` when the table does not exist), as dicts,
        filtered by column equality."""
        table = self.tables.get(name)
        if table is None:
            return []
        query = select(table).where(
            *(
                table.c[k].in_(v) if isinstance(v, list | tuple | set) else table.c[k] == v
                for k, v in equal.items()
            )
        )
        with reading(), self.engine.connect() as connection:
            return [dict(row._mapping) for row in connection.execute(query)]

    def count(self, name: str) -> int:
        """The rows of table ``name`` (0 when it does not exist)."""
        table = self.tables.get(name)
        if table is None:
            return 0
        with reading(), self.engine.connect() as connection:
            return connection.scalar(select(func.count()).select_from(table)) or 0

    def column(self, name: str, column: str) -> list[Any]:
        """The distinct values of one column (``[]`` for a missing table)."""
        table = self.tables.get(name)
        if table is None:
            return []
        with reading(), self.engine.connect() as connection:
            return list(connection.scalars(select(table.c[column]).distinct()))


@contextmanager
def open_airflow(url: str) -> Iterator[AirflowMetastore]:
    """Connect to the Airflow metastore at ``url`` and reflect its tables.

    :raises UsageError: when the database cannot be reached or is no Airflow 2.x metastore.
    """
    parsed = source_url(url)
    engine = create_engine(parsed, pool_pre_ping=True)
    if parsed.get_backend_name() == "mysql":
        event.listen(engine, "connect", _utc_session)
    try:
        metadata = MetaData()
        with reading():
            metadata.reflect(engine, only=lambda name, _: name in (*REQUIRED, *OPTIONAL))
        missing = [name for name in REQUIRED if name not in metadata.tables]
        if missing:
            raise UsageError(
                f"SOURCE_URL is not an Airflow 2.x metastore: no table {', '.join(missing)}"
            )
        if "execution_date" not in metadata.tables["dag_run"].c:
            raise UsageError(
                "SOURCE_URL is not an Airflow 2.x metastore: dag_run has no execution_date "
                "(an Airflow 3 metastore, or not Airflow's)"
            )
        with reading(), engine.connect() as connection:
            version = connection.scalar(select(metadata.tables["alembic_version"]))
        yield AirflowMetastore(engine, metadata.tables, str(version))
    finally:
        engine.dispose()


@contextmanager
def reading() -> Iterator[None]:
    """Errors of the Airflow database as one line naming it (not Tradewind's metastore)."""
    try:
        yield
    except SQLAlchemyError as exc:
        cause = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        raise MetastoreError(
            f"cannot read the Airflow metastore: {cause[0] if cause else type(exc).__name__}"
        ) from exc


def _utc_session(dbapi_connection: Any, _record: Any) -> None:
    """MySQL TIMESTAMP values come back in the session's zone: Airflow writes in UTC."""
    cursor = dbapi_connection.cursor()
    cursor.execute("SET time_zone = '+00:00'")
    cursor.close()


def utc(value: datetime | None) -> datetime | None:
    """An aware UTC datetime: naive values (MySQL) are UTC already."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


class _PlainUnpickler(pickle.Unpickler):
    """Builds only what pickle makes without a class: dicts, lists, strings, numbers."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def load_conf(value: bytes | str | None) -> Any:
    """``dag_run.conf``: a pickle (Airflow 2.x) or JSON text (some forks); ``None`` when
    it holds anything else than plain data."""
    if value is None:
        return None
    if isinstance(value, str):
        value = value.encode()
    try:
        return _PlainUnpickler(io.BytesIO(bytes(value))).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError):
        pass
    try:
        return json.loads(bytes(value))
    except ValueError:
        return None


def json_text(value: bytes | str | None) -> str | None:
    """An XCom value as JSON text, or ``None`` when it is not JSON (a pickled XCom)."""
    if value is None:
        return None
    try:
        text = bytes(value).decode("utf-8") if not isinstance(value, str) else value
        json.loads(text)
    except ValueError:  # UnicodeDecodeError is one
        return None
    return text


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
