"""Which code a runner imports for a queued version (``core.dag_source``), on SQLite.

The DAG processor parses real files into a real metastore; the DagBag is then asked for
the fingerprint the scheduler serialized while the worker's file is missing, older,
edited or current.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from cluster.config import Settings
from cluster.dagfiles.processor import DagProcessor
from cluster.errors import DagDefinitionError, DagVersionMismatch, NotFoundError
from cluster.execution.dagbag import (
    CACHE_FOLDER,
    DagBag,
    file_digest,
    source_cache_for,
    version_files,
)
from cluster.execution.worker import locator
from cluster.metastore.engine import create_engine_for, make_session_factory
from cluster.metastore.migrate import migrate
from cluster.metastore.models import DagCode, SerializedDagRow
from cluster.operators.bash import BashOperator

DAG_FILE = """
from datetime import datetime
from cluster.sdk import DAG
from cluster.operators.bash import BashOperator

with DAG("versioned", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
    for n in range({tasks}):
        BashOperator(task_id=f"t{{n}}", bash_command="echo {marker}")
"""


@pytest.fixture
def sessions(settings: Settings) -> sessionmaker[Session]:
    engine = create_engine_for(settings.metastore)
    migrate(engine)
    return make_session_factory(engine)


@pytest.fixture
def dags(tmp_path: Path) -> Path:
    folder = tmp_path / "scheduler_dags"
    folder.mkdir()
    return folder


def write(folder: Path, *, tasks: int, marker: str) -> Path:
    path = folder / "versioned.py"
    path.write_text(DAG_FILE.format(tasks=tasks, marker=marker))
    return path


def parse(folder: Path, sessions: sessionmaker[Session]) -> str:
    """What the scheduler does: parse the folder; the fingerprint it serialized."""
    report = DagProcessor(
        folders=[folder], sessions=sessions, timeout=30.0, paused_at_creation=False
    ).process()
    assert not report.errors, report.errors
    with sessions() as session:
        row = session.get(SerializedDagRow, "versioned")
        assert row is not None
        return row.fingerprint


def bag(settings: Settings, sessions: sessionmaker[Session], source: str) -> DagBag:
    settings = settings.replace("core", dag_source=source)
    return DagBag(locate=locator(sessions), sources=source_cache_for(settings, sessions))


def marker_of(dag_bag: DagBag, fingerprint: str) -> str:
    task = dag_bag.get("versioned", fingerprint).get_task("t0")
    assert isinstance(task, BashOperator)
    return task.bash_command


def test_local_source_imports_the_file_once_per_version(
    settings: Settings, sessions: sessionmaker[Session], dags: Path
) -> None:
    write(dags, tasks=2, marker="v1")
    fingerprint = parse(dags, sessions)
    dag_bag = bag(settings, sessions, "local")

    assert marker_of(dag_bag, fingerprint) == "echo v1"
    assert dag_bag.serialized("versioned", fingerprint).fingerprint() == fingerprint
    # the second call came from the cache: the same DAG object, not a second import
    assert dag_bag.get("versioned", fingerprint) is dag_bag.get("versioned", fingerprint)


def test_local_source_refuses_a_changed_file(
    settings: Settings, sessions: sessionmaker[Session], dags: Path
) -> None:
    write(dags, tasks=2, marker="v1")
    fingerprint = parse(dags, sessions)
    write(dags, tasks=3, marker="v1")

    with pytest.raises(DagVersionMismatch, match="changed since the scheduler serialized it"):
        bag(settings, sessions, "local").get("versioned", fingerprint)


def _no_metastore(dag_id: str) -> tuple[str, str]:
    raise AssertionError(f"asked the metastore where {dag_id} is")


def test_the_file_a_claim_names_is_imported_without_asking_the_metastore(
    sessions: sessionmaker[Session], dags: Path
) -> None:
    """The pool's book knows each version's file (:func:`version_files`); a pool
    process given it opens no metastore connection to import, and still checks the
    version it got."""
    path = write(dags, tasks=2, marker="v1")
    fingerprint = parse(dags, sessions)
    with sessions() as session:
        files = version_files(session, [("versioned", fingerprint), ("versioned", "older")])
    assert files == {("versioned", fingerprint): str(path)}

    dag_bag = DagBag(locate=_no_metastore)
    _, task, spec = dag_bag.task("versioned", fingerprint, "t1", fileloc=str(path))
    assert (task.task_id, spec.task_id) == ("t1", "t1")
    write(dags, tasks=3, marker="v1")
    with pytest.raises(DagVersionMismatch, match="changed since the scheduler serialized it"):
        DagBag(locate=_no_metastore).task("versioned", fingerprint, "t1", fileloc=str(path))


def test_local_source_says_the_file_is_missing_and_what_to_do(
    settings: Settings, sessions: sessionmaker[Session], dags: Path
) -> None:
    path = write(dags, tasks=2, marker="v1")
    fingerprint = parse(dags, sessions)
    path.unlink()

    with pytest.raises(NotFoundError, match=r"core\.dag_source = metastore"):
        bag(settings, sessions, "local").get("versioned", fingerprint)


def test_metastore_source_runs_the_stored_copy_when_the_file_is_missing(
    settings: Settings, sessions: sessionmaker[Session], dags: Path
) -> None:
    path = write(dags, tasks=2, marker="v1")
    fingerprint = parse(dags, sessions)
    digest = file_digest(path)
    path.unlink()
    dag_bag = bag(settings, sessions, "metastore")

    dag = dag_bag.get("versioned", fingerprint)

    cached = settings.home / CACHE_FOLDER / str(digest) / "versioned.py"
    assert cached.is_file()
    assert dag.fileloc == str(path)  # the recorded path, which the fingerprint covers
    assert marker_of(dag_bag, fingerprint) == "echo v1"


def test_metastore_source_prefers_the_stored_copy_over_an_older_file(
    settings: Settings, sessions: sessionmaker[Session], dags: Path
) -> None:
    write(dags, tasks=2, marker="old")
    parse(dags, sessions)
    write(dags, tasks=3, marker="new")
    fingerprint = parse(dags, sessions)
    write(dags, tasks=2, marker="old")  # this worker was never updated

    dag_bag = bag(settings, sessions, "metastore")

    assert marker_of(dag_bag, fingerprint) == "echo new"
    assert len(dag_bag.get("versioned", fingerprint).tasks) == 3


def test_metastore_source_notices_an_edit_the_fingerprint_cannot_see(
    settings: Settings, sessions: sessionmaker[Session], dags: Path
) -> None:
    """Only the command changed: same structure, same fingerprint, other bytes."""
    write(dags, tasks=2, marker="scheduler")
    fingerprint = parse(dags, sessions)
    write(dags, tasks=2, marker="worker")

    assert marker_of(bag(settings, sessions, "local"), fingerprint) == "echo worker"
    assert marker_of(bag(settings, sessions, "metastore"), fingerprint) == "echo scheduler"


def test_metastore_source_falls_back_to_the_local_file_of_the_queued_version(
    settings: Settings, sessions: sessionmaker[Session], dags: Path
) -> None:
    """The scheduler parsed a newer version after queueing; this worker still has the old."""
    write(dags, tasks=2, marker="v1")
    queued = parse(dags, sessions)
    write(dags, tasks=3, marker="v2")
    parse(dags, sessions)
    write(dags, tasks=2, marker="v1")

    assert marker_of(bag(settings, sessions, "metastore"), queued) == "echo v1"


def test_metastore_source_fails_clearly_when_no_source_gives_the_version(
    settings: Settings, sessions: sessionmaker[Session], dags: Path
) -> None:
    write(dags, tasks=2, marker="v1")
    queued = parse(dags, sessions)
    write(dags, tasks=3, marker="v2")
    parse(dags, sessions)
    write(dags, tasks=4, marker="v3")

    with pytest.raises(DagVersionMismatch) as caught:
        bag(settings, sessions, "metastore").get("versioned", queued)
    assert "stored source" in str(caught.value) and "local file" in str(caught.value)


def test_a_stored_source_that_does_not_match_its_digest_is_refused(
    settings: Settings, sessions: sessionmaker[Session], dags: Path
) -> None:
    path = write(dags, tasks=2, marker="v1")
    fingerprint = parse(dags, sessions)
    path.unlink()
    with sessions.begin() as session:
        session.execute(update(DagCode).values(source_code=DAG_FILE.format(tasks=2, marker="x")))

    with pytest.raises(DagDefinitionError, match="does not match its digest"):
        bag(settings, sessions, "metastore").get("versioned", fingerprint)


def test_a_dag_file_imports_its_sibling_modules(
    settings: Settings, sessions: sessionmaker[Session], dags: Path
) -> None:
    (dags / "dag_sibling_helpers.py").write_text("COMMAND = 'echo from a sibling'\n")
    (dags / "versioned.py").write_text(
        DAG_FILE.format(tasks=1, marker="x").replace(
            '"echo x"', "__import__('dag_sibling_helpers').COMMAND"
        )
    )
    fingerprint = parse(dags, sessions)

    assert marker_of(bag(settings, sessions, "local"), fingerprint) == "echo from a sibling"
