"""``tradewind sla-misses``: the SLA misses the DAG processor recorded (Airflow keeps them
in ``sla_miss`` and shows them under Browse; its CLI has no command for them)."""

from __future__ import annotations

from typing import Any

import click
from sqlalchemy.orm import Session

from cluster.cli.app import App, pass_app
from cluster.cli.output import emit, output_option
from cluster.cli.transactions import in_metastore
from cluster.metastore.slas import list_misses


@click.group("sla-misses")
def sla_group() -> None:
    """List the SLA misses of tasks with an sla."""


@sla_group.command("list")
@click.option("-d", "--dag-id", help="Only this DAG's misses.")
@click.option("--limit", type=click.IntRange(1, 10000), default=100, show_default=True)
@output_option
@pass_app
def list_command(app: App, dag_id: str | None, limit: int, output: str) -> None:
    """List SLA misses, newest logical date first, and whether they were reported."""

    def work(session: Session) -> list[dict[str, Any]]:
        found, _total = list_misses(session, dag_id=dag_id, limit=limit)
        return [m.to_dict() for m in found]

    emit(
        in_metastore(app, work),
        output,
        columns=["dag_id", "task_id", "execution_date", "timestamp", "notification_sent",
                 "email_sent"],
    )  # fmt: skip
