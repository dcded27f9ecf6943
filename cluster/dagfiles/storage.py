"""Writing a batch of imported files to the metastore in one transaction.

For each file: its DAGs' ``dag`` and ``serialized_dag`` rows (the serialized form only
when its fingerprint changed), its ``dag_code``, its ``import_error`` set or cleared,
and the DAGs it no longer defines made inactive. The rows a batch touches are read
with one query per table first, so a batch of a hundred files costs a handful of
statements and one commit, not a transaction per file: a cold pass over 1,000 files
spent more time in per-file round trips than in the imports themselves.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from cluster.dagfiles.serialized import SerializedDag, fingerprint_of
from cluster.metastore.datasets import sync_references
from cluster.metastore.models import Dag, DagCode, ImportErrorRow, SerializedDagRow
from cluster.sdk.datasets import condition_aliases, condition_uris

M = TypeVar("M")

#: timetables that create no run by themselves (``schedule=None``, datasets only)
UNSCHEDULED = ("null", "datasets")
#: ``next_dagrun_create_after`` of a DAG the scheduler need not look at: its timetable
#: never schedules, or it waits for a run to finish (max_active_runs); far enough never
#: to be due
NEVER = datetime(9999, 12, 31, tzinfo=UTC)


def path_hash(path: str) -> str:
    return hashlib.sha256(path.encode()).hexdigest()


def source_digest(source: str) -> str:
    return hashlib.sha256(source.encode()).hexdigest()


@dataclass(frozen=True)
class Parsed:
    """One imported file, ready to store: its DAGs, or the error to record."""

    fileloc: str
    source: str
    #: ``dag_id → (the DAG, its JSON as the child serialized it)``
    dags: dict[str, tuple[SerializedDag, str]]
    error: str | None = None
    stacktrace: str | None = None


@dataclass
class _Rows:
    """The rows a batch touches, by key: read first, new ones added as they are made."""

    dags: dict[str, Dag]
    serialized: dict[str, SerializedDagRow]
    code: dict[str, DagCode]


class BatchWriter:
    """Stores batches of :class:`Parsed` files; one instance per processor."""

    def __init__(self, *, paused_at_creation: bool, clock: Callable[[], datetime]) -> None:
        self._paused_at_creation = paused_at_creation
        self._clock = clock

    def write(self, session: Session, files: Sequence[Parsed]) -> list[str]:
        """Store ``files`` in ``session``'s transaction; returns the DAG ids made inactive."""
        now = self._clock()
        good = [f for f in files if f.error is None]
        dag_ids = [d for f in good for d in f.dags]
        rows = _Rows(
            dags={r.dag_id: r for r in _prefetch(session, Dag, Dag.dag_id, dag_ids)},
            serialized={
                r.dag_id: r
                for r in _prefetch(session, SerializedDagRow, SerializedDagRow.dag_id, dag_ids)
            },
            code={
                r.fileloc_hash: r
                for r in _prefetch(
                    session, DagCode, DagCode.fileloc_hash, [path_hash(f.fileloc) for f in good]
                )
            },
        )
        errors = {
            row.filename_hash: row
            for row in _prefetch(
                session,
                ImportErrorRow,
                ImportErrorRow.filename_hash,
                [path_hash(f.fileloc) for f in files],
            )
        }
        for parsed in files:
            if parsed.error is not None:
                _record_import_error(session, errors, parsed, now)
        fixed = [path_hash(f.fileloc) for f in good if path_hash(f.fileloc) in errors]
        if fixed:
            session.execute(delete(ImportErrorRow).where(ImportErrorRow.filename_hash.in_(fixed)))
        with session.no_autoflush:
            for parsed in good:
                for serialized, text in parsed.dags.values():
                    self._upsert_dag(session, rows, serialized, text, now)
                _upsert_code(session, rows, parsed.fileloc, parsed.source)
        return _deactivate_missing(session, good)

    def _upsert_dag(
        self, session: Session, rows: _Rows, serialized: SerializedDag, text: str, now: datetime
    ) -> None:
        fingerprint = fingerprint_of(text)
        row = rows.dags.get(serialized.dag_id)
        if row is None:
            row = Dag(dag_id=serialized.dag_id, is_paused=self._paused_at_creation)
            session.add(row)
            rows.dags[serialized.dag_id] = row
        stored = rows.serialized.get(serialized.dag_id)
        if stored is None or stored.fingerprint != fingerprint:
            _sync_datasets(session, serialized, now, first_version=stored is None)
        if row.fingerprint is None or stored is None:
            schedule_changed = True
        elif stored.fingerprint == fingerprint:
            schedule_changed = False
        else:
            schedule_changed = (
                SerializedDag.from_json(stored.data).timetable != serialized.timetable
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
            # the scheduler recomputes the next run from the new timetable; one that
            # never schedules needs no look (the loop would load each such new DAG,
            # and a manual run queued meanwhile would wait for it)
            row.next_dagrun_create_after = (
                NEVER if serialized.timetable.get("type") in UNSCHEDULED else None
            )
        if stored is None:
            stored = SerializedDagRow(
                dag_id=serialized.dag_id,
                fileloc=serialized.fileloc,
                data=text,
                fingerprint=fingerprint,
            )
            session.add(stored)
            rows.serialized[serialized.dag_id] = stored
        elif stored.fingerprint != fingerprint:
            stored.data = text
            stored.fingerprint = fingerprint
            stored.fileloc = serialized.fileloc


def _sync_datasets(
    session: Session, serialized: SerializedDag, now: datetime, *, first_version: bool
) -> None:
    """The DAG's consumer and producer references, when its structure changed; a DAG's
    first version without datasets has none to write or remove."""
    condition = serialized.timetable.get("condition")
    outlets = {
        task_id: [o["uri"] for o in task.extra.get("outlets", ()) if "uri" in o]
        for task_id, task in serialized.tasks.items()
    }
    outlets = {t: uris for t, uris in outlets.items() if uris}
    if first_version and not condition and not outlets:
        return
    sync_references(
        session,
        serialized.dag_id,
        uris=condition_uris(condition) if condition else [],
        aliases=condition_aliases(condition) if condition else [],
        outlets=outlets,
        now=now,
    )


def _prefetch(session: Session, model: type[M], key: Any, values: list[str]) -> list[M]:
    """The rows of ``model`` whose ``key`` is in ``values``, read in slices under every
    database's limit on bound parameters."""
    rows: list[M] = []
    unique = sorted(set(values))
    for start in range(0, len(unique), 500):
        rows.extend(session.scalars(select(model).where(key.in_(unique[start : start + 500]))))
    return rows


def _deactivate_missing(session: Session, files: Sequence[Parsed]) -> list[str]:
    """The DAGs of ``files`` that a file no longer defines become inactive."""
    if not files:
        return []
    present = {f.fileloc: set(f.dags) for f in files}
    active = session.execute(
        select(Dag.dag_id, Dag.fileloc).where(Dag.fileloc.in_(list(present)), Dag.is_active)
    ).all()
    gone = [dag_id for dag_id, fileloc in active if dag_id not in present[fileloc]]
    if gone:
        session.execute(update(Dag).where(Dag.dag_id.in_(gone)).values(is_active=False))
    return gone


def _record_import_error(
    session: Session, known: dict[str, ImportErrorRow], parsed: Parsed, now: datetime
) -> None:
    digest = path_hash(parsed.fileloc)
    row = known.get(digest)
    if row is None:
        row = ImportErrorRow(filename=parsed.fileloc, filename_hash=digest)
        session.add(row)
        known[digest] = row
    row.message, row.stacktrace, row.timestamp = parsed.error or "", parsed.stacktrace, now


def _upsert_code(session: Session, rows: _Rows, fileloc: str, source: str) -> None:
    digest = path_hash(fileloc)
    row = rows.code.get(digest)
    fingerprint = source_digest(source)
    if row is None:
        row = DagCode(
            fileloc_hash=digest, fileloc=fileloc, fingerprint=fingerprint, source_code=source
        )
        session.add(row)
        rows.code[digest] = row
    elif row.fingerprint != fingerprint:
        row.source_code, row.fingerprint = source, fingerprint
