"""A migrated SQLite metastore and a DAGs folder of the test's own."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from cluster.config import MetastoreSettings
from cluster.dagfiles.processor import DagProcessor
from cluster.metastore.engine import create_engine_for, make_session_factory
from cluster.metastore.migrate import migrate

GOOD_DAG = """
from datetime import datetime
from cluster.sdk import DAG
from cluster.operators.bash import BashOperator

with DAG("{dag_id}", schedule="@daily", start_date=datetime(2024, 1, 1)) as dag:
    BashOperator(task_id="a", bash_command="true") >> BashOperator(task_id="b", bash_command="true")
"""


@pytest.fixture
def dags_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "dags"
    folder.mkdir()
    return folder


@pytest.fixture
def sessions(tmp_path: Path) -> sessionmaker[Session]:
    engine = create_engine_for(MetastoreSettings(url=f"sqlite:///{tmp_path / 'tw.db'}"))
    migrate(engine)
    return make_session_factory(engine)


@pytest.fixture
def processor(dags_folder: Path, sessions: sessionmaker[Session]) -> DagProcessor:
    return DagProcessor(
        folders=[dags_folder], sessions=sessions, timeout=3.0, paused_at_creation=True
    )
