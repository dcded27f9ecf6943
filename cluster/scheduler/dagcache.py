"""Serialized DAGs the scheduler plans over, cached by fingerprint.

The scheduler never imports DAG files: it reads ``serialized_dag`` and keeps each
version parsed in memory until the fingerprint in the ``dag`` row changes. A task
that names no queue gets the cluster's default queue here, as Airflow's
``[operators] default_queue`` does: the serialized form (and so its fingerprint,
which workers check) leaves it unset, so that setting may differ between nodes.
"""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import select
from sqlalchemy.orm import Session

from cluster.dagfiles.serialized import SerializedDag
from cluster.metastore.models import SerializedDagRow
from cluster.policy.weights import effective_priority_weights
from cluster.sdk.baseoperator import DEFAULT_QUEUE

#: complete runs remembered before the set starts over
MAX_COMPLETE_RUNS = 10_000


class DagCache:
    """``dag_id → SerializedDag`` for the current fingerprint, plus derived figures."""

    def __init__(self, default_queue: str = DEFAULT_QUEUE) -> None:
        self._default_queue = default_queue
        self._dags: dict[str, tuple[str, SerializedDag, dict[str, int]]] = {}
        #: ``(dag_id, run_id, fingerprint)`` of runs known to have every task's instance
        self._complete: set[tuple[str, str, str]] = set()

    def get(
        self, session: Session, dag_id: str, fingerprint: str | None = None
    ) -> SerializedDag | None:
        """The DAG; reloaded when ``fingerprint`` differs from the cached one (``None``: any)."""
        cached = self._dags.get(dag_id)
        if cached is not None and (fingerprint is None or cached[0] == fingerprint):
            return cached[1]
        row = session.scalars(
            select(SerializedDagRow).where(SerializedDagRow.dag_id == dag_id)
        ).first()
        if row is None:
            self._dags.pop(dag_id, None)
            return None
        dag = self._with_queues(SerializedDag.from_json(row.data))
        self._dags[dag_id] = (row.fingerprint, dag, effective_priority_weights(dag))
        return dag

    def _with_queues(self, dag: SerializedDag) -> SerializedDag:
        """``dag`` with :attr:`_default_queue` for each task that names no queue."""
        unset = [t for t in dag.tasks.values() if t.queue is None]
        if not unset:
            return dag
        tasks = dict(dag.tasks)
        tasks.update({t.task_id: replace(t, queue=self._default_queue) for t in unset})
        return replace(dag, tasks=tasks)

    def complete(self, dag_id: str, run_id: str) -> bool:
        """Whether the run was seen with an instance of every task of the cached version."""
        return (dag_id, run_id, self.fingerprint(dag_id) or "") in self._complete

    def mark_complete(self, dag_id: str, run_id: str) -> None:
        """The run has an instance of every task of the cached version: rows are never
        deleted from a run (a vanished task's instance becomes ``removed``), so this
        holds until the version changes."""
        if len(self._complete) >= MAX_COMPLETE_RUNS:
            self._complete.clear()  # finished runs' entries: cheaper to forget than to track
        self._complete.add((dag_id, run_id, self.fingerprint(dag_id) or ""))

    def fingerprint(self, dag_id: str) -> str | None:
        cached = self._dags.get(dag_id)
        return cached[0] if cached else None

    def weights(self, session: Session, dag_id: str) -> dict[str, int]:
        if self.get(session, dag_id) is None:
            return {}
        return self._dags[dag_id][2]
