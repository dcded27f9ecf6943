"""``/slaMisses``: the SLA misses the DAG processor recorded (Tradewind's path: Airflow's
v1 API has no SLA endpoint; the fields are those of Airflow's ``sla_miss`` table)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from cluster.metastore.slas import list_misses
from cluster.web.api.operations import Routes
from cluster.web.api.schemas import Page
from cluster.web.context import db_session

routes = Routes("SlaMiss")


class SlaMissOut(BaseModel):
    dag_id: str
    task_id: str
    execution_date: datetime
    timestamp: datetime | None = None
    email_sent: bool
    notification_sent: bool
    description: str | None = None


class SlaMissCollection(BaseModel):
    sla_misses: list[SlaMissOut]
    total_entries: int


class SlaMissQuery(Page):
    dag_id: str | None = Field(None, description="Only this DAG's misses.")


@routes.operation("/slaMisses", "GET", query=SlaMissQuery, response=SlaMissCollection)
def get_sla_misses(*, query: SlaMissQuery) -> SlaMissCollection:
    """List SLA misses, newest logical date first."""
    found, total = list_misses(
        db_session(), dag_id=query.dag_id, limit=query.limit, offset=query.offset
    )
    return SlaMissCollection(
        sla_misses=[SlaMissOut(**m.to_dict()) for m in found], total_entries=total
    )
