"""Finding DAG files under a folder, honouring ``.tradewindignore``.

A ``.tradewindignore`` file holds glob patterns, one per line (``#`` starts a comment),
matched against paths relative to the folder that holds the ignore file; a pattern
ending in ``/`` matches a directory. As in Airflow's safe mode, only ``.py`` files that
mention ``dag`` (any case) are imported, so helper modules beside DAGs cost nothing.

A pass over a folder whose files did not change costs a ``stat`` per file, no read:
:func:`scan_dag_files` keeps each file's verdict under its :class:`Stamp` (modification
time, size, inode) and reads a file again only when its stamp changed.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

IGNORE_FILE = ".tradewindignore"


class Stamp(NamedTuple):
    """What ``stat`` says of a file; a different stamp means the file may have changed."""

    mtime_ns: int
    size: int
    inode: int


#: ``path → (stamp, mentions a DAG)``: the verdicts of an earlier scan
Sniffed = dict[str, tuple[Stamp, bool]]


def find_dag_files(folder: Path) -> list[Path]:
    """Every candidate DAG file under ``folder``, sorted; a missing folder gives none."""
    return [path for path, _ in scan_dag_files(folder, {}, {})]


def scan_dag_files(folder: Path, earlier: Sniffed, now: Sniffed) -> list[tuple[Path, Stamp]]:
    """Every candidate DAG file under ``folder`` with its stamp, sorted.

    A file whose stamp is in ``earlier`` keeps its verdict unread; every verdict of
    this scan (``.py`` files outside ignored paths) is added to ``now``.
    """
    if not folder.is_dir():
        return []
    return sorted(_walk(folder.resolve(), [], earlier, now))


def stamp_of(stat: os.stat_result) -> Stamp:
    return Stamp(stat.st_mtime_ns, stat.st_size, stat.st_ino)


def _walk(
    folder: Path, patterns: list[tuple[Path, str]], earlier: Sniffed, now: Sniffed
) -> Iterator[tuple[Path, Stamp]]:
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
                    yield from _walk(path, patterns, earlier, now)
            elif entry.name.endswith(".py") and not _ignored(path, patterns, is_dir=False):
                try:
                    stamp = stamp_of(entry.stat(follow_symlinks=True))
                except OSError:
                    continue  # removed since the directory was listed
                known = earlier.get(entry.path)
                verdict = known[1] if known and known[0] == stamp else _might_contain_dag(path)
                now[entry.path] = (stamp, verdict)
                if verdict:
                    yield path, stamp


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
