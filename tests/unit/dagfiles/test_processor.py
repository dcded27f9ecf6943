"""DAG processing: rows for good files, import errors for broken ones, only changed files
re-imported, unchanged files costing a stat."""

from __future__ import annotations

import os
import time
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from cluster.dagfiles.processor import BATCH_FILES, DagProcessor
from cluster.dagfiles.serialized import SerializedDag
from cluster.dagfiles.storage import NEVER
from cluster.metastore.models import Dag, DagCode, ImportErrorRow, SerializedDagRow
from tests.unit.dagfiles.conftest import GOOD_DAG


def _active(sessions: sessionmaker[Session]) -> dict[str, bool]:
    with sessions() as session:
        return {d.dag_id: d.is_active for d in session.scalars(select(Dag))}


def _errors(sessions: sessionmaker[Session]) -> dict[str, str]:
    with sessions() as session:
        return {Path(e.filename).name: e.message for e in session.scalars(select(ImportErrorRow))}


def test_good_and_broken_files(
    dags_folder: Path, processor: DagProcessor, sessions: sessionmaker[Session]
) -> None:
    (dags_folder / "one.py").write_text(GOOD_DAG.format(dag_id="one"))
    (dags_folder / "bad.py").write_text("# dag\nraise ValueError('nope')\n")
    report = processor.process()
    assert report.dags == 1
    assert _active(sessions) == {"one": True}
    assert _errors(sessions) == {"bad.py": "ValueError: nope (bad.py, line 2)"}
    with sessions() as session:
        stored = session.get(SerializedDagRow, "one")
        assert stored is not None
        assert SerializedDag.from_json(stored.data).fingerprint() == stored.fingerprint
        assert session.scalar(select(DagCode.source_code)) == GOOD_DAG.format(dag_id="one")
        assert session.get(Dag, "one").is_paused is True  # type: ignore[union-attr]


def test_only_changed_files_are_imported_again(dags_folder: Path, processor: DagProcessor) -> None:
    (dags_folder / "one.py").write_text(GOOD_DAG.format(dag_id="one"))
    (dags_folder / "two.py").write_text(GOOD_DAG.format(dag_id="two"))
    assert len(processor.process().imported) == 2
    assert processor.process().imported == []
    (dags_folder / "two.py").write_text(GOOD_DAG.format(dag_id="two") + "\n# changed\n")
    assert [Path(p).name for p in processor.process().imported] == ["two.py"]


def test_fixing_a_file_clears_its_error(
    dags_folder: Path, processor: DagProcessor, sessions: sessionmaker[Session]
) -> None:
    path = dags_folder / "fix.py"
    path.write_text("# dag\nraise ValueError('nope')\n")
    processor.process()
    assert "fix.py" in _errors(sessions)
    path.write_text(GOOD_DAG.format(dag_id="fixed"))
    processor.process()
    assert _errors(sessions) == {}
    assert _active(sessions) == {"fixed": True}


def test_a_broken_file_keeps_its_last_good_version(
    dags_folder: Path, processor: DagProcessor, sessions: sessionmaker[Session]
) -> None:
    path = dags_folder / "keep.py"
    path.write_text(GOOD_DAG.format(dag_id="keep"))
    processor.process()
    path.write_text("syntax error here (dag\n")
    processor.process()
    assert _active(sessions) == {"keep": True}
    assert "keep.py" in _errors(sessions)


def test_vanished_files_and_dags_become_inactive(
    dags_folder: Path, processor: DagProcessor, sessions: sessionmaker[Session]
) -> None:
    (dags_folder / "one.py").write_text(GOOD_DAG.format(dag_id="one"))
    (dags_folder / "two.py").write_text(GOOD_DAG.format(dag_id="two"))
    processor.process()
    (dags_folder / "two.py").unlink()
    (dags_folder / "one.py").write_text(GOOD_DAG.format(dag_id="renamed"))
    processor.process()
    assert _active(sessions) == {"one": False, "two": False, "renamed": True}


def test_duplicate_dag_id_across_files_is_an_error(
    dags_folder: Path, processor: DagProcessor, sessions: sessionmaker[Session]
) -> None:
    (dags_folder / "a.py").write_text(GOOD_DAG.format(dag_id="same"))
    processor.process()
    (dags_folder / "b.py").write_text(GOOD_DAG.format(dag_id="same"))
    processor.process()
    errors = _errors(sessions)
    assert "b.py" in errors
    assert "already defined" in errors["b.py"]


def _age(path: Path, seconds: float) -> None:
    """Set ``path``'s modification time ``seconds`` in the past."""
    old = time.time() - seconds
    os.utime(path, (old, old))


def test_an_unchanged_stamp_costs_no_read(
    dags_folder: Path, processor: DagProcessor, sessions: sessionmaker[Session]
) -> None:
    path = dags_folder / "one.py"
    path.write_text(GOOD_DAG.format(dag_id="one"))
    _age(path, 3600)
    processor.process()
    # same size, same modification time: the pass trusts the stamp and reads nothing
    stamp = path.stat()
    path.write_text(GOOD_DAG.format(dag_id="uno"))
    os.utime(path, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    assert processor.process().imported == []
    # a new modification time: read, changed, imported
    _age(path, 60)
    assert [Path(p).name for p in processor.process().imported] == ["one.py"]
    assert _active(sessions) == {"one": False, "uno": True}


def test_a_file_rewritten_within_the_timestamp_granularity_is_still_seen(
    dags_folder: Path, processor: DagProcessor, sessions: sessionmaker[Session]
) -> None:
    path = dags_folder / "one.py"
    path.write_text(GOOD_DAG.format(dag_id="one"))
    processor.process()
    # a write right after the pass that keeps size and modification time: the file was
    # modified too shortly before its stamp was taken to trust the stamp
    stamp = path.stat()
    path.write_text(GOOD_DAG.format(dag_id="uno"))
    os.utime(path, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    assert [Path(p).name for p in processor.process().imported] == ["one.py"]
    assert _active(sessions) == {"one": False, "uno": True}


def test_many_files_are_imported_in_batches_and_all_stored(
    dags_folder: Path, sessions: sessionmaker[Session]
) -> None:
    names = [f"d{n:03d}" for n in range(2 * BATCH_FILES + 7)]
    for name in names:
        (dags_folder / f"{name}.py").write_text(GOOD_DAG.format(dag_id=name))
    (dags_folder / "d050.py").write_text("# dag\nraise ValueError('nope')\n")
    processor = DagProcessor(
        folders=[dags_folder], sessions=sessions, timeout=10.0, paused_at_creation=True,
        parallelism=2,
    )  # fmt: skip
    report = processor.process()
    assert len(report.imported) == len(names)
    assert report.dags == len(names) - 1
    assert set(_active(sessions)) == set(names) - {"d050"}
    assert _errors(sessions) == {"d050.py": "ValueError: nope (d050.py, line 2)"}


def test_a_dag_without_a_schedule_is_never_due_until_it_gets_one(
    dags_folder: Path, processor: DagProcessor, sessions: sessionmaker[Session]
) -> None:
    """The scheduler looks only at DAGs whose next run it must plan: one without a
    schedule is stored as never due (not loaded by each creation look), and planned
    again once a new version has a schedule."""

    def create_after() -> object:
        with sessions() as session:
            return session.scalar(select(Dag.next_dagrun_create_after).where(Dag.dag_id == "one"))

    path = dags_folder / "one.py"
    path.write_text(GOOD_DAG.format(dag_id="one").replace('schedule="@daily"', "schedule=None"))
    processor.process()
    assert create_after() == NEVER
    path.write_text(GOOD_DAG.format(dag_id="one"))
    processor.process()
    assert create_after() is None
