"""Unit tests of the metastore run on SQLite only (no services); see tests/integration."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import MultiFernet
from sqlalchemy.orm import Session

from cluster.config import Settings
from cluster.metastore.engine import SessionFactory
from cluster.metastore.models import DagRun, TaskInstance
from cluster.metastore.secrets import make_fernet

T0 = datetime(2025, 1, 1, tzinfo=UTC)


@pytest.fixture
def metastore_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'metastore.db'}"


@pytest.fixture
def session(session_factory: SessionFactory) -> Iterator[Session]:
    with session_factory() as session:
        yield session


@pytest.fixture
def fernet(settings: Settings) -> MultiFernet:
    return make_fernet(settings.core.fernet_key)


@pytest.fixture
def add_run(session: Session) -> Callable[..., DagRun]:
    """Insert a DAG run: ``add_run("d", "r1", state="running", end_date=...)``."""

    def add(dag_id: str = "d", run_id: str = "r1", **values: Any) -> DagRun:
        values.setdefault("run_type", "manual")
        values.setdefault("state", "running")
        values.setdefault("logical_date", T0)
        run = DagRun(dag_id=dag_id, run_id=run_id, **values)
        session.add(run)
        session.flush()
        return run

    return add


@pytest.fixture
def add_task(session: Session) -> Callable[..., TaskInstance]:
    """Insert a task instance of an existing run: ``add_task("t1", state="queued")``."""

    def add(
        task_id: str = "t1", *, dag_id: str = "d", run_id: str = "r1", **values: Any
    ) -> TaskInstance:
        ti = TaskInstance(dag_id=dag_id, run_id=run_id, task_id=task_id, **values)
        session.add(ti)
        session.flush()
        return ti

    return add
