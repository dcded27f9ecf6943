"""Finding DAG files under a folder, honouring ``.tradewindignore``.

A ``.tradewindignore`` file holds glob patterns, one per line (``#`` starts a comment),
matched against paths relative to the folder that holds the ignore file; a pattern
ending in ``/`` matches a directory. As in Airflow's safe mode, only ``.py`` files that
mention ``dag`` (any case) are imported, so helper modules beside DAGs cost nothing.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterator
from pathlib import Path

IGNORE_FILE = ".tradewindignore"


def find_dag_files(folder: Path) -> list[Path]:
    """Every candidate DAG file under ``folder``, sorted; a missing folder gives none."""
    if not folder.is_dir():
        return []
    return sorted(_walk(folder.resolve(), []))


def _walk(folder: Path, patterns: list[tuple[Path, str]]) -> Iterator[Path]:
    ignore = folder / IGNORE_FILE
    if ignore.is_file():
        patterns = patterns + [(folder, p) for p in _read_patterns(ignore)]
    with os.scandir(folder) as entries:
        for entry in sorted(entries, key=lambda e: e.name):
            path = Path(entry.path)
            if entry.name.startswith(".") or entry.name == "__pycache__":
                continue
            if entry.is_dir(follow_symlinks=True):
                if not _ignored(path, patterns, is_dir=True):
                    yield from _walk(path, patterns)
            elif (
                entry.name.endswith(".py")
                and not _ignored(path, patterns, is_dir=False)
                and _might_contain_dag(path)
            ):
                yield path


def _read_patterns(path: Path) -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


def _ignored(path: Path, patterns: list[tuple[Path, str]], *, is_dir: bool) -> bool:
    for base, pattern in patterns:
        relative = path.relative_to(base).as_posix()
        if pattern.endswith("/"):
            if is_dir and _match(relative, pattern.rstrip("/")):
                return True
        elif _match(relative, pattern):
            return True
    return False


def _match(relative: str, pattern: str) -> bool:
    pattern = pattern.lstrip("/")
    if fnmatch.fnmatchcase(relative, pattern):
        return True
    # a pattern without a slash matches a name at any depth, like .gitignore
    return "/" not in pattern and fnmatch.fnmatchcase(relative.rsplit("/", 1)[-1], pattern)


def _might_contain_dag(path: Path) -> bool:
    try:
        return b"dag" in path.read_bytes().lower()
    except OSError:
        return False
