"""Finding what a page's path names: the API's lookups, plus the serialized DAG if any.

A DAG row can exist before its serialized form (or after a failed parse), so pages
that can do without the structure ask :func:`serialized_or_none` and say so.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from cluster import actions
from cluster.dagfiles.serialized import SerializedDag
from cluster.errors import NotFoundError
from cluster.web.api.lookups import require_dag, require_run, require_task_instance

__all__ = ["require_dag", "require_run", "require_task_instance", "serialized_or_none"]


def serialized_or_none(session: Session, dag_id: str) -> SerializedDag | None:
    """The serialized DAG, or ``None`` when it has not been serialized (yet)."""
    try:
        return actions.load_dag(session, dag_id)
    except NotFoundError:
        return None
