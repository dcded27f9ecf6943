"""DAG processing: changed files → ``dag``, ``serialized_dag``, ``dag_code``, ``import_error``.

Only files whose content changed since the last pass are imported again (each in a
child process, see :mod:`cluster.dagfiles.importer`). A file that fails leaves its
previous DAG versions in place and records an import error; a file fixed clears its
error; DAGs whose file vanished, or no longer defines them, become inactive.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from cluster.dagfiles.discovery import find_dag_files
from cluster.dagfiles.importer import FileResult, import_file
from cluster.dagfiles.serialized import SerializedDag
from cluster.metastore.datasets import sync_references
from cluster.metastore.engine import transaction
from cluster.metastore.models import Dag, DagCode, ImportErrorRow, SerializedDagRow
from cluster.sdk.datasets import condition_aliases, condition_uris

log = logging.getLogger(__name__)

#: the example DAGs shipped beside the package, loaded when ``core.load_examples`` is on
EXAMPLES_FOLDER = Path(__file__).resolve().parents[2] / "examples" / "dags"


def path_hash(path: str) -> str:
    return hashlib.sha256(path.encode()).hexdigest()


@dataclass
class ProcessReport:
    """What one pass did, for logs, metrics and ``tradewind dags reserialize``."""

    files: int = 0
    imported: list[str] = field(default_factory=list)
    dags: int = 0
    errors: dict[str, str] = field(default_factory=dict)
    deactivated: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


class DagProcessor:
    """Keeps the metastore in step with the DAG folders."""

    def __init__(
        self,
        *,
        folders: list[Path],
        sessions: sessionmaker[Session],
        timeout: float,
        paused_at_creation: bool,
        parallelism: int = 2,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._folders = folders
        self._sessions = sessions
        self._timeout = timeout
        self._paused_at_creation = paused_at_creation
        self._parallelism = max(1, parallelism)
        self._clock = clock
        #: content hash of each file as last imported
        self._seen: dict[str, str] = {}

    def process(self, *, force: bool = False) -> ProcessReport:
        """One pass over every folder; ``force`` re-imports unchanged files too."""
        report = ProcessReport()
        files = [f for folder in self._folders for f in find_dag_files(folder)]
        report.files = len(files)
        sources = {str(f): _read(f) for f in files}
        changed = [f for f in files if force or self._seen.get(str(f)) != _digest(sources[str(f)])]
        with ThreadPoolExecutor(self._parallelism) as pool:
            results = list(pool.map(self._import, changed))
        known = self._dag_owners()
        for result in results:
            self._store(result, sources[str(result.path)], known, report)
        report.deactivated = self._deactivate_vanished({str(f) for f in files})
        return report

    def _import(self, path: Path) -> FileResult:
        return import_file(path, timeout=self._timeout, search_path=path.parent)

    def _dag_owners(self) -> dict[str, str]:
        with self._sessions() as session:
            return {
                d: f
                for d, f in session.execute(select(Dag.dag_id, Dag.fileloc).where(Dag.is_active))
            }

    def _store(
        self, result: FileResult, source: str, owners: dict[str, str], report: ProcessReport
    ) -> None:
        fileloc = str(result.path)
        report.imported.append(fileloc)
        report.seconds[fileloc] = result.duration
        error = result.error
        stacktrace = result.stacktrace
        dags = {d: SerializedDag.from_json(j) for d, j in result.dags.items()} if not error else {}
        clashes = [d for d in dags if owners.get(d, fileloc) != fileloc]
        if clashes:
            error = (
                f"DuplicateDagId: DAG id '{clashes[0]}' is already defined in {owners[clashes[0]]}"
            )
            stacktrace, dags = None, {}

        def write(session: Session) -> list[str]:
            if error:
                _record_import_error(session, fileloc, error, stacktrace, self._clock())
                return []
            session.execute(
                delete(ImportErrorRow).where(ImportErrorRow.filename_hash == path_hash(fileloc))
            )
            for serialized in dags.values():
                self._upsert_dag(session, serialized)
            _upsert_code(session, fileloc, source)
            return self._deactivate_missing(session, fileloc, set(dags))

        report.deactivated.extend(transaction(self._sessions, write))
        if error:
            report.errors[fileloc] = error
        else:
            owners.update({dag_id: fileloc for dag_id in dags})
            report.dags += len(dags)
        # a broken file is not imported again until it changes: an endless loop at
        # import would otherwise cost the time limit on every pass
        self._seen[fileloc] = _digest(source)

    def _upsert_dag(self, session: Session, serialized: SerializedDag) -> None:
        now = self._clock()
        fingerprint = serialized.fingerprint()
        row = session.get(Dag, serialized.dag_id)
        if row is None:
            row = Dag(dag_id=serialized.dag_id, is_paused=self._paused_at_creation)
            session.add(row)
        schedule_changed = (
            row.fingerprint is None or _schedule_of(session, row) != serialized.timetable
        )
        row.fileloc = serialized.fileloc
        row.is_active = True
        row.last_parsed_at = now
        row.fingerprint = fingerprint
        row.timetable_summary = serialized.schedule
        row.tags = list(serialized.tags)
        row.owners = serialized.owner
        row.description = serialized.description
        row.max_active_runs = serialized.max_active_runs
        row.max_active_tasks = serialized.max_active_tasks
        if schedule_changed:
            # the scheduler recomputes the next run from the new timetable
            row.next_dagrun_create_after = None
        stored = session.get(SerializedDagRow, serialized.dag_id)
        if stored is None or stored.fingerprint != fingerprint:
            _sync_datasets(session, serialized, now)
        if stored is None:
            session.add(
                SerializedDagRow(
                    dag_id=serialized.dag_id,
                    fileloc=serialized.fileloc,
                    data=serialized.to_json(),
                    fingerprint=fingerprint,
                )
            )
        elif stored.fingerprint != fingerprint:
            stored.data = serialized.to_json()
            stored.fingerprint = fingerprint
            stored.fileloc = serialized.fileloc

    def _deactivate_missing(self, session: Session, fileloc: str, present: set[str]) -> list[str]:
        gone = list(
            session.scalars(
                select(Dag.dag_id).where(
                    Dag.fileloc == fileloc, Dag.is_active, Dag.dag_id.not_in(present or {""})
                )
            )
        )
        if gone:
            session.execute(update(Dag).where(Dag.dag_id.in_(gone)).values(is_active=False))
        return gone

    def _deactivate_vanished(self, present: set[str]) -> list[str]:
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


def _schedule_of(session: Session, row: Dag) -> dict[str, object] | None:
    stored = session.get(SerializedDagRow, row.dag_id)
    return SerializedDag.from_json(stored.data).timetable if stored else None


def _record_import_error(
    session: Session, fileloc: str, message: str, stacktrace: str | None, now: datetime
) -> None:
    digest = path_hash(fileloc)
    row = session.scalars(
        select(ImportErrorRow).where(ImportErrorRow.filename_hash == digest)
    ).first()
    if row is None:
        session.add(
            ImportErrorRow(
                filename=fileloc,
                filename_hash=digest,
                message=message,
                stacktrace=stacktrace,
                timestamp=now,
            )
        )
    else:
        row.message, row.stacktrace, row.timestamp = message, stacktrace, now


def _upsert_code(session: Session, fileloc: str, source: str) -> None:
    digest = path_hash(fileloc)
    row = session.get(DagCode, digest)
    fingerprint = _digest(source)
    if row is None:
        session.add(
            DagCode(
                fileloc_hash=digest, fileloc=fileloc, fingerprint=fingerprint, source_code=source
            )
        )
    elif row.fingerprint != fingerprint:
        row.source_code, row.fingerprint = source, fingerprint


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def _digest(source: str) -> str:
    return hashlib.sha256(source.encode()).hexdigest()


def dag_folders(dags_folder: Path, *, load_examples: bool) -> list[Path]:
    """The folders a processor watches: the DAGs folder, and the examples when enabled."""
    folders: Iterable[Path] = [dags_folder, EXAMPLES_FOLDER] if load_examples else [dags_folder]
    return [f for f in folders if f.is_dir()]


def _sync_datasets(session: Session, serialized: SerializedDag, now: datetime) -> None:
    """The DAG's consumer and producer references, when its structure changed."""
    condition = serialized.timetable.get("condition")
    outlets = {
        task_id: [o["uri"] for o in task.extra.get("outlets", ()) if "uri" in o]
        for task_id, task in serialized.tasks.items()
    }
    sync_references(
        session,
        serialized.dag_id,
        uris=condition_uris(condition) if condition else [],
        aliases=condition_aliases(condition) if condition else [],
        outlets={t: uris for t, uris in outlets.items() if uris},
        now=now,
    )
