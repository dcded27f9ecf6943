"""Who acts, and the serialized DAG every action works from."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from cluster.dagfiles.serialized import SerializedDag
from cluster.errors import NotFoundError
from cluster.metastore.models import SerializedDagRow


@dataclass(frozen=True)
class Actor:
    """Who acts, for the audit log: a username (or ``cli``) and where from."""

    username: str
    source: str = "cli"


def load_dag(session: Session, dag_id: str) -> SerializedDag:
    """The serialized DAG; :class:`NotFoundError` names what to run when it is missing."""
    row = session.get(SerializedDagRow, dag_id)
    if row is None:
        raise NotFoundError(
            f"DAG '{dag_id}' not found: is it in the DAGs folder? (tradewind dags list, "
            "tradewind dags list-import-errors)"
        )
    return SerializedDag.from_json(row.data)
