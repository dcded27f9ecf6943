"""DAG objects for the runner, imported once per DAG version (fingerprint).

The scheduler queued a try of the version it serialized. The runner imports the DAG
file, serializes what it got and compares fingerprints: a file that changed since is a
clear error rather than a silent run of other code. Imports are cached by fingerprint,
so a long-lived worker pays for each version once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from cluster.dagfiles.importer import dags_in_module, load_module
from cluster.dagfiles.serialize import serialize_dag
from cluster.dagfiles.serialized import SerializedDag
from cluster.errors import DagVersionMismatch, NotFoundError
from cluster.sdk import DAG

#: given a dag_id, where its file is: ``(fileloc, fingerprint serialized by the scheduler)``
LocateDag = Callable[[str], tuple[str, str]]


class DagBag:
    """A cache of imported DAGs keyed by ``(dag_id, fingerprint)``."""

    def __init__(self, *, locate: LocateDag, search_path: Path | None = None) -> None:
        self._locate = locate
        self._search_path = search_path
        self._dags: dict[tuple[str, str], tuple[DAG, SerializedDag]] = {}
        self._lock = threading.Lock()
        #: grows with every import: a forked child knows only the versions of its generation
        self.generation = 0

    def get(self, dag_id: str, fingerprint: str) -> DAG:
        """The DAG of exactly this version.

        :raises DagVersionMismatch: the file on disk is not the version queued.
        :raises NotFoundError: the DAG is unknown or its file no longer defines it.
        """
        return self._load(dag_id, fingerprint)[0]

    def serialized(self, dag_id: str, fingerprint: str) -> SerializedDag:
        """The serialized form of exactly this version (retries, pools, sensor mode, ...)."""
        return self._load(dag_id, fingerprint)[1]

    def _load(self, dag_id: str, fingerprint: str) -> tuple[DAG, SerializedDag]:
        key = (dag_id, fingerprint)
        with self._lock:
            cached = self._dags.get(key)
            if cached is None:
                cached = self._dags[key] = self._import(dag_id, fingerprint)
                self.generation += 1
            return cached

    def _import(self, dag_id: str, fingerprint: str) -> tuple[DAG, SerializedDag]:
        fileloc, _ = self._locate(dag_id)
        module = load_module(Path(fileloc), search_path=self._search_path)
        found = {dag.dag_id: dag for dag in dags_in_module(module)}
        if dag_id not in found:
            raise NotFoundError(f"DAG '{dag_id}' is no longer defined in {fileloc}")
        dag = found[dag_id]
        serialized = serialize_dag(dag)
        actual = serialized.fingerprint()
        if actual != fingerprint:
            raise DagVersionMismatch(
                f"DAG '{dag_id}' in {fileloc} changed since the scheduler serialized it "
                f"(queued version {fingerprint[:12]}, file now {actual[:12]}); "
                "the scheduler will pick up the new version, then clear the task to run it"
            )
        return dag, serialized
