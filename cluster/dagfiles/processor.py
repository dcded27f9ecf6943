"""DAG processing: changed files → ``dag``, ``serialized_dag``, ``dag_code``, ``import_error``.

A pass costs a ``stat`` per unchanged file: a file is read (and its content hashed)
only when its stamp (modification time, size, inode) moved, and imported again only
when its content changed, so a pass every second over a thousand files is cheap
(Airflow lists its folder every 30 s). Changed files are imported in batches by
forked children (see :mod:`cluster.dagfiles.importer`), as many at once as the node
has cores, and each batch is stored in one transaction
(:mod:`cluster.dagfiles.storage`) while the next ones import. A file that fails leaves
its previous DAG versions in place and records an import error; a file fixed clears
its error; DAGs whose file vanished, or no longer defines them, become inactive.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from cluster.dagfiles.discovery import Sniffed, Stamp, scan_dag_files
from cluster.dagfiles.importer import FileResult, import_files
from cluster.dagfiles.serialized import SerializedDag
from cluster.dagfiles.storage import BatchWriter, Parsed, path_hash, source_digest
from cluster.metastore.engine import transaction
from cluster.metastore.models import Dag, ImportErrorRow

__all__ = ["EXAMPLES_FOLDER", "DagProcessor", "ProcessReport", "dag_folders", "path_hash"]

log = logging.getLogger(__name__)

#: the example DAGs shipped beside the package, loaded when ``core.load_examples`` is on
EXAMPLES_FOLDER = Path(__file__).resolve().parents[2] / "examples" / "dags"
#: files one child imports in turn at most: few enough that batches spread over the
#: cores and are stored while the next ones import
BATCH_FILES = 50
#: a file modified less than this long before its stamp was taken is read again at
#: the next pass even if its stamp is unchanged: a write within the file system's
#: timestamp granularity, keeping the size, leaves the stamp as it was (git's "racy" files)
RACY_SECONDS = 2.0
#: seconds between checks for DAGs whose file vanished while the set of files is unchanged
VANISHED_CHECK_SECONDS = 60.0


@dataclass
class ProcessReport:
    """What one pass did, for logs, metrics and ``tradewind dags reserialize``."""

    files: int = 0
    imported: list[str] = field(default_factory=list)
    dags: int = 0
    errors: dict[str, str] = field(default_factory=dict)
    deactivated: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class _Seen:
    """A file as last imported: its stamp, when the stamp was taken, its content's hash."""

    stamp: Stamp
    taken: float
    digest: str


@dataclass(frozen=True)
class _Read:
    """A changed file's source, and what it is seen as once stored."""

    source: str
    seen: _Seen


class DagProcessor:
    """Keeps the metastore in step with the DAG folders.

    :param parallelism: children importing at once; ``0``: the number of cores.
    """

    def __init__(
        self,
        *,
        folders: list[Path],
        sessions: sessionmaker[Session],
        timeout: float,
        paused_at_creation: bool,
        parallelism: int = 0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._folders = folders
        self._sessions = sessions
        self._timeout = timeout
        self._parallelism = parallelism if parallelism > 0 else (os.cpu_count() or 1)
        self._writer = BatchWriter(paused_at_creation=paused_at_creation, clock=clock)
        self._seen: dict[str, _Seen] = {}
        self._sniffed: Sniffed = {}
        #: the files of the last pass that checked for vanished ones, and when (monotonic)
        self._checked_files: frozenset[str] | None = None
        self._checked_at = 0.0

    def process(self, *, force: bool = False) -> ProcessReport:
        """One pass over every folder; ``force`` re-imports unchanged files too."""
        report = ProcessReport()
        sniffed: Sniffed = {}
        files = [
            f for folder in self._folders for f in scan_dag_files(folder, self._sniffed, sniffed)
        ]
        self._sniffed = sniffed
        report.files = len(files)
        changed = self._changed(files, force=force)
        if changed:
            self._import_and_store(changed, report)
        present = frozenset(str(path) for path, _ in files)
        if force or present != self._checked_files or self._vanished_check_due():
            report.deactivated.extend(self._deactivate_vanished(present))
            self._checked_files, self._checked_at = present, time.monotonic()
        return report

    def _changed(self, files: list[tuple[Path, Stamp]], *, force: bool) -> dict[Path, _Read]:
        """The files to import, each as read; unchanged stamps cost no read."""
        changed: dict[Path, _Read] = {}
        for path, stamp in files:
            seen = self._seen.get(str(path))
            if not force and seen is not None and seen.stamp == stamp and not _racy(seen):
                continue
            read = _Read(_read(path), _Seen(stamp, time.time(), ""))
            digest = source_digest(read.source)
            if not force and seen is not None and seen.digest == digest:
                self._seen[str(path)] = _Seen(stamp, read.seen.taken, digest)
                continue
            changed[path] = _Read(read.source, _Seen(stamp, read.seen.taken, digest))
        return changed

    def _vanished_check_due(self) -> bool:
        return time.monotonic() - self._checked_at >= VANISHED_CHECK_SECONDS

    def _import_and_store(self, changed: dict[Path, _Read], report: ProcessReport) -> None:
        """Import ``changed`` in batches over the cores; store each batch, in order, as
        soon as it is imported (the DAG ids of earlier files win a clash)."""
        paths = list(changed)
        size = max(1, min(BATCH_FILES, -(-len(paths) // self._parallelism)))
        batches = [paths[i : i + size] for i in range(0, len(paths), size)]
        owners = self._dag_owners()
        with ThreadPoolExecutor(min(self._parallelism, len(batches))) as pool:
            futures = [pool.submit(self._import, batch) for batch in batches]
            for future in futures:
                results = future.result()
                self._store(results, changed, owners, report)

    def _import(self, batch: list[Path]) -> list[FileResult]:
        return list(import_files([(p, p.parent) for p in batch], timeout=self._timeout))

    def _dag_owners(self) -> dict[str, str]:
        with self._sessions() as session:
            return {
                d: f
                for d, f in session.execute(select(Dag.dag_id, Dag.fileloc).where(Dag.is_active))
            }

    def _store(
        self,
        results: list[FileResult],
        reads: dict[Path, _Read],
        owners: dict[str, str],
        report: ProcessReport,
    ) -> None:
        batch = [_parsed(r, reads[r.path].source, owners) for r in results]
        report.deactivated.extend(
            transaction(self._sessions, lambda session: self._writer.write(session, batch))
        )
        for parsed, result in zip(batch, results, strict=True):
            report.imported.append(parsed.fileloc)
            report.seconds[parsed.fileloc] = result.duration
            if parsed.error is not None:
                report.errors[parsed.fileloc] = parsed.error
            else:
                owners.update({dag_id: parsed.fileloc for dag_id in parsed.dags})
                report.dags += len(parsed.dags)
            # a broken file is not imported again until it changes: an endless loop at
            # import would otherwise cost the time limit on every pass
            self._seen[parsed.fileloc] = reads[result.path].seen

    def _deactivate_vanished(self, present: frozenset[str]) -> list[str]:
        def write(session: Session) -> list[str]:
            active = session.execute(select(Dag.dag_id, Dag.fileloc).where(Dag.is_active)).all()
            gone = [dag_id for dag_id, fileloc in active if fileloc not in present]
            if gone:
                session.execute(update(Dag).where(Dag.dag_id.in_(gone)).values(is_active=False))
            for row in session.scalars(select(ImportErrorRow)).all():
                if row.filename not in present:
                    session.delete(row)
            return gone

        gone = transaction(self._sessions, write)
        for path in [p for p in self._seen if p not in present]:
            del self._seen[path]
        return gone


def _parsed(result: FileResult, source: str, owners: dict[str, str]) -> Parsed:
    """``result`` as stored: a DAG id another active file defines is this file's error."""
    fileloc = str(result.path)
    if result.error:
        return Parsed(fileloc, source, {}, result.error, result.stacktrace)
    dags = {d: (SerializedDag.from_json(j), j) for d, j in result.dags.items()}
    clashes = [d for d in dags if owners.get(d, fileloc) != fileloc]
    if clashes:
        error = f"DuplicateDagId: DAG id '{clashes[0]}' is already defined in {owners[clashes[0]]}"
        return Parsed(fileloc, source, {}, error)
    return Parsed(fileloc, source, dags)


def _racy(seen: _Seen) -> bool:
    """Whether the file was modified so shortly before its stamp was taken that a later
    write may have kept the stamp."""
    return seen.taken - seen.stamp.mtime_ns / 1e9 < RACY_SECONDS


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def dag_folders(dags_folder: Path, *, load_examples: bool) -> list[Path]:
    """The folders a processor watches: the DAGs folder, and the examples when enabled."""
    folders: Iterable[Path] = [dags_folder, EXAMPLES_FOLDER] if load_examples else [dags_folder]
    return [f for f in folders if f.is_dir()]
