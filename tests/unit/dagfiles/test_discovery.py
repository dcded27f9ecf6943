"""Finding DAG files: only .py files that mention dag, minus .tradewindignore patterns."""

from __future__ import annotations

from pathlib import Path

from cluster.dagfiles.discovery import Sniffed, find_dag_files, scan_dag_files, stamp_of


def _write(path: Path, text: str = "from cluster.sdk import DAG\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_finds_python_files_that_mention_dags(dags_folder: Path) -> None:
    a = _write(dags_folder / "a.py")
    nested = _write(dags_folder / "team" / "b.py")
    _write(dags_folder / "helper.py", "def add(x, y):\n    return x + y\n")
    _write(dags_folder / "notes.txt")
    assert find_dag_files(dags_folder) == sorted([a.resolve(), nested.resolve()])


def test_ignore_file_patterns(dags_folder: Path) -> None:
    keep = _write(dags_folder / "keep.py")
    _write(dags_folder / "scratch_one.py")
    _write(dags_folder / "vendor" / "lib.py")
    _write(dags_folder / "team" / "scratch_two.py")
    _write(dags_folder / ".tradewindignore", "# not DAGs\nscratch_*\nvendor/\n")
    assert find_dag_files(dags_folder) == [keep.resolve()]


def test_missing_folder_has_no_files(tmp_path: Path) -> None:
    assert find_dag_files(tmp_path / "absent") == []


def test_a_file_whose_stamp_did_not_move_keeps_its_verdict_unread(dags_folder: Path) -> None:
    path = _write(dags_folder / "a.py", "x = 1\n")
    earlier: Sniffed = {}
    assert scan_dag_files(dags_folder, earlier, earlier) == []
    # the verdict is stored under the file's stamp: a scan that finds the same stamp
    # trusts it without reading (here a verdict planted to show the file is not read)
    stamp = stamp_of(path.stat())
    planted: Sniffed = {str(path.resolve()): (stamp, True)}
    now: Sniffed = {}
    assert scan_dag_files(dags_folder, planted, now) == [(path.resolve(), stamp)]
    assert now == planted


def test_a_file_whose_stamp_moved_is_read_again(dags_folder: Path) -> None:
    path = _write(dags_folder / "a.py", "x = 1\n")
    earlier: Sniffed = {}
    scan_dag_files(dags_folder, {}, earlier)
    path.write_text("from cluster.sdk import DAG  # now one\n")
    assert [p for p, _ in scan_dag_files(dags_folder, earlier, {})] == [path.resolve()]
