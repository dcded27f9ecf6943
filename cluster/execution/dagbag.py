"""DAG objects for the runner, imported once per DAG version (fingerprint).

The scheduler queued a try of the version it serialized; the message carries that
version's fingerprint, a hash of the *serialized form* (tasks, edges, retries, pools,
schedule, the file's path), not of the file's bytes. The runner imports a DAG file,
serializes what it got and compares fingerprints: a file that gives another version is
a clear error rather than a silent run of other code. Imports are cached by
``(dag_id, fingerprint)``, so a long-lived worker pays for each version once.

Where the code comes from is ``core.dag_source``:

``local`` (the default)
    The file at the path the scheduler recorded, on this worker's disk. Missing or
    different, the try fails with a message that says so. Every node must be deployed
    with the same DAG folder (Ansible, a shared volume, git-sync).

``metastore``
    The scheduler stores each file's source in ``dag_code`` with the SHA-256 of its
    bytes. A worker whose local file has exactly those bytes imports it (so sibling
    modules and template files beside it work as usual); otherwise it writes the
    stored source to ``$TRADEWIND_HOME/dag_cache/<sha256>/<file name>`` and imports
    that copy. Either import must still give the queued fingerprint; when the stored
    source no longer does (the file changed again since the try was queued), the local
    file is tried as a last resort.

Trade-offs of ``metastore``, worth knowing before choosing it:

- Only the DAG file itself travels. A DAG file that imports sibling modules from the
  DAG folder, reads a ``.sql`` template or a config file beside it, finds them only
  if this worker's folder at the recorded path has them, and then in whatever version
  it has. It answers the single-file case; multi-file projects still need deployment.
- ``dag_code`` holds one source per file, the latest the scheduler parsed. A try
  queued before an edit that changed the DAG's structure cannot be served from it
  (its fingerprint differs) and fails as a version mismatch, exactly as with ``local``.
- The fingerprint covers structure, not code: an edit of a callable's body that leaves
  the serialized form unchanged keeps the fingerprint. Comparing the local file's
  bytes with ``dag_code``'s digest is what lets a worker notice such an edit and run
  the stored source. A worker process that already imported a fingerprint keeps
  running that import for the same fingerprint until it restarts.
- The cache is content-addressed (the directory is the source's digest), so pool
  processes and workers sharing a home never see a half-written or stale copy under
  a given name; nothing removes old versions (they are small; delete the folder at
  will while no worker runs).
- Reading ``dag_code`` costs one query per new version per pool process.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from cluster.config import Settings
from cluster.dagfiles.importer import dags_in_module, load_module
from cluster.dagfiles.processor import path_hash
from cluster.dagfiles.serialize import serialize_dag
from cluster.dagfiles.serialized import SerializedDag, SerializedTask
from cluster.errors import DagDefinitionError, DagVersionMismatch, NotFoundError
from cluster.metastore.engine import transaction
from cluster.metastore.models import DagCode, SerializedDagRow
from cluster.sdk import DAG, BaseOperator

#: given a dag_id, where its file is: ``(fileloc, fingerprint serialized by the scheduler)``
LocateDag = Callable[[str], tuple[str, str]]

#: the folder under ``$TRADEWIND_HOME`` that holds DAG sources taken from the metastore
CACHE_FOLDER = "dag_cache"


@dataclass(frozen=True)
class StoredSource:
    """A DAG file's source as the scheduler stored it in ``dag_code``."""

    fileloc: str
    #: SHA-256 hex of ``source`` encoded as UTF-8
    digest: str
    source: str


#: the stored source of the file at a path, ``None`` when the metastore has none
FetchSource = Callable[[str], StoredSource | None]


def version_files(
    session: Session, versions: Collection[tuple[str, str]]
) -> dict[tuple[str, str], str]:
    """The file of each ``(dag_id, fingerprint)`` the metastore still serializes as that
    version (the fingerprint covers the path, so a version's file never changes)."""
    wanted = set(versions)
    rows = session.execute(
        select(
            SerializedDagRow.dag_id, SerializedDagRow.fingerprint, SerializedDagRow.fileloc
        ).where(SerializedDagRow.dag_id.in_(sorted({dag_id for dag_id, _ in wanted})))
    )
    return {(d, f): fileloc for d, f, fileloc in rows if (d, f) in wanted}


def source_digest(data: bytes) -> str:
    """The digest ``dag_code`` keeps of a source (its text, encoded as UTF-8)."""
    return hashlib.sha256(data).hexdigest()


def file_digest(path: Path) -> str | None:
    """The digest of ``path`` read as the DAG processor reads it; ``None`` when it is missing.

    The processor reads text with universal newlines, so this does too: a CRLF file is
    the same version as its stored copy.
    """
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return None
    return source_digest(text.encode())


def stored_sources(sessions: sessionmaker[Session]) -> FetchSource:
    """Read ``dag_code`` rows through ``sessions`` (retried on a lost connection).

    :raises MetastoreError: when the metastore cannot be read even after retries.
    """

    def fetch(fileloc: str) -> StoredSource | None:
        def read(session: Session) -> StoredSource | None:
            row = session.get(DagCode, path_hash(fileloc))
            if row is None:
                return None
            return StoredSource(row.fileloc, row.fingerprint, row.source_code)

        return transaction(sessions, read)

    return fetch


class SourceCache:
    """Sources from the metastore, written under ``root/<digest>/<file name>`` and imported.

    :param fetch: reads the stored source of a path (:func:`stored_sources`).
    :param root: the cache folder, created on first use.
    """

    def __init__(self, fetch: FetchSource, root: Path) -> None:
        self._fetch = fetch
        self.root = root

    def stored(self, fileloc: str) -> StoredSource | None:
        return self._fetch(fileloc)

    def materialize(self, stored: StoredSource) -> Path:
        """The cached copy of ``stored``, written atomically if it is not there yet.

        :raises DagDefinitionError: when the stored source does not match its own digest
            (a ``dag_code`` row edited by hand): running it would not be the version
            the scheduler parsed.
        """
        data = stored.source.encode()
        if source_digest(data) != stored.digest:
            raise DagDefinitionError(
                f"the source of {stored.fileloc} stored in the metastore does not match its "
                "digest; let the scheduler parse the file again ('tradewind dags reserialize')"
            )
        path = self.root / stored.digest / Path(stored.fileloc).name
        if path.is_file() and source_digest(path.read_bytes()) == stored.digest:
            return path
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        partial.write_bytes(data)
        os.replace(partial, path)
        return path


def source_cache_for(settings: Settings, sessions: sessionmaker[Session]) -> SourceCache | None:
    """The cache ``core.dag_source = metastore`` asks for, ``None`` for ``local``."""
    if settings.core.dag_source != "metastore":
        return None
    return SourceCache(stored_sources(sessions), settings.home / CACHE_FOLDER)


class DagBag:
    """A cache of imported DAGs keyed by ``(dag_id, fingerprint)``.

    :param locate: where a DAG's file is (from ``serialized_dag``), asked only when the
        caller did not give the version's file.
    :param search_path: put on ``sys.path`` before an import; by default the folder of
        the DAG's recorded path, as the DAG processor does, so sibling modules import.
    :param sources: ``core.dag_source = metastore``: take the stored source when the
        local file is missing or not the stored version; ``None`` imports the local
        file only.
    """

    def __init__(
        self,
        *,
        locate: LocateDag,
        search_path: Path | None = None,
        sources: SourceCache | None = None,
    ) -> None:
        self._locate = locate
        self._search_path = search_path
        self._sources = sources
        self._dags: dict[tuple[str, str], tuple[DAG, SerializedDag]] = {}
        self._lock = threading.Lock()

    def get(self, dag_id: str, fingerprint: str) -> DAG:
        """The DAG of exactly this version.

        :raises DagVersionMismatch: no source at hand gives the version queued.
        :raises NotFoundError: the DAG is unknown, its file is missing (``local``), or
            the file no longer defines it.
        :raises DagDefinitionError: the file failed to import.
        """
        return self._load(dag_id, fingerprint)[0]

    def task(
        self, dag_id: str, fingerprint: str, task_id: str, *, fileloc: str | None = None
    ) -> tuple[DAG, BaseOperator, SerializedTask]:
        """The DAG, one of its tasks and that task's serialized form, of exactly this version.

        :param fileloc: the version's file, when the caller knows it (the claim does):
            an import then needs no metastore query to locate it.
        :raises KeyError: this version has no such task; otherwise as :meth:`get`.
        """
        dag, serialized = self._load(dag_id, fingerprint, fileloc)
        return dag, dag.get_task(task_id), serialized.tasks[task_id]

    def serialized(self, dag_id: str, fingerprint: str) -> SerializedDag:
        """The serialized form of exactly this version (retries, pools, sensor mode, ...)."""
        return self._load(dag_id, fingerprint)[1]

    def _load(
        self, dag_id: str, fingerprint: str, fileloc: str | None = None
    ) -> tuple[DAG, SerializedDag]:
        key = (dag_id, fingerprint)
        with self._lock:
            cached = self._dags.get(key)
            if cached is None:
                cached = self._dags[key] = self._import(dag_id, fingerprint, fileloc)
            return cached

    def _import(
        self, dag_id: str, fingerprint: str, fileloc: str | None
    ) -> tuple[DAG, SerializedDag]:
        if fileloc is None:
            fileloc, _ = self._locate(dag_id)
        if self._sources is None:
            return self._import_local(dag_id, fingerprint, fileloc)
        return self._import_any(dag_id, fingerprint, fileloc, self._sources)

    def _import_local(
        self, dag_id: str, fingerprint: str, fileloc: str
    ) -> tuple[DAG, SerializedDag]:
        local = Path(fileloc)
        if not local.is_file():
            raise NotFoundError(
                f"DAG file {fileloc} of '{dag_id}' is not on this worker (core.dag_source = "
                "local): deploy the DAG folder to every worker, or set core.dag_source = metastore"
            )
        dag, serialized = self._import_file(dag_id, local, fileloc)
        actual = serialized.fingerprint()
        if actual != fingerprint:
            raise DagVersionMismatch(
                f"DAG '{dag_id}' in {fileloc} changed since the scheduler serialized it "
                f"(queued version {fingerprint[:12]}, file now {actual[:12]}); "
                "the scheduler will pick up the new version, then clear the task to run it"
            )
        return dag, serialized

    def _import_any(
        self, dag_id: str, fingerprint: str, fileloc: str, sources: SourceCache
    ) -> tuple[DAG, SerializedDag]:
        """The first of the local file and the stored source that gives ``fingerprint``."""
        stored = sources.stored(fileloc)
        local = Path(fileloc)
        local_digest = file_digest(local)
        candidates: list[tuple[str, Path]] = []
        if stored is not None and local_digest != stored.digest:
            candidates.append(("stored source", sources.materialize(stored)))
        if local_digest is not None:
            candidates.append(("local file", local))
        if not candidates:
            raise NotFoundError(
                f"DAG file {fileloc} of '{dag_id}' is neither on this worker nor in the "
                "metastore's dag_code: let the scheduler parse it again"
            )
        tried: list[str] = []
        for what, path in candidates:
            try:
                dag, serialized = self._import_file(dag_id, path, fileloc)
            except (DagDefinitionError, NotFoundError) as exc:
                tried.append(f"{what} {path}: {exc}")
                continue
            actual = serialized.fingerprint()
            if actual == fingerprint:
                return dag, serialized
            tried.append(f"{what} {path} gives version {actual[:12]}")
        raise DagVersionMismatch(
            f"no source of DAG '{dag_id}' gives the queued version {fingerprint[:12]} "
            f"(core.dag_source = metastore): {'; '.join(tried)}. The file changed again "
            "since the try was queued; clear the task to run the current version"
        )

    def _import_file(self, dag_id: str, path: Path, fileloc: str) -> tuple[DAG, SerializedDag]:
        """Import ``path`` and serialize ``dag_id`` as if it had been read from ``fileloc``.

        A copy from the cache is imported under its own path; its DAGs get the recorded
        path back, which the serialized form (and so the fingerprint) includes.
        """
        search_path = self._search_path or Path(fileloc).parent
        try:
            module = load_module(path, search_path=search_path)
        except DagDefinitionError:
            raise
        except Exception as exc:
            raise DagDefinitionError(f"importing {path} failed: {exc!r}") from exc
        found = {dag.dag_id: dag for dag in dags_in_module(module)}
        if dag_id not in found:
            raise NotFoundError(f"DAG '{dag_id}' is no longer defined in {fileloc}")
        dag = found[dag_id]
        dag.fileloc = fileloc
        return dag, serialize_dag(dag)
