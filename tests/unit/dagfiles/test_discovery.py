"""Finding DAG files: only .py files that mention dag, minus .tradewindignore patterns."""

from __future__ import annotations

from pathlib import Path

from cluster.dagfiles.discovery import find_dag_files


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
