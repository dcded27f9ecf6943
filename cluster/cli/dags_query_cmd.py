"""``tradewind dags list|list-import-errors|list-runs``: what the metastore holds.

They read rows and the serialized form only; no DAG file, no Alembic, no scheduler.
"""

from __future__ import annotations

from typing import Any

import click
from sqlalchemy import select

from cluster.cli.app import App, pass_app
from cluster.cli.output import emit, output_option
from cluster.dagfiles.serialized import SerializedDag
from cluster.errors import NotFoundError
from cluster.metastore.models import Dag, DagRun, ImportErrorRow, SerializedDagRow


@click.command("list")
@output_option
@pass_app
def list_dags(app: App, output: str) -> None:
    """Every active DAG with its schedule and task count."""
    with app.session_factory() as session:
        rows = session.execute(
            select(Dag, SerializedDagRow.data)
            .join(SerializedDagRow, SerializedDagRow.dag_id == Dag.dag_id)
            .where(Dag.is_active)
            .order_by(Dag.dag_id)
        ).all()
    listing = [_dag_row(dag, SerializedDag.from_json(data)) for dag, data in rows]
    emit(
        listing,
        output,
        columns=["dag_id", "fileloc", "owners", "is_paused", "schedule", "task_count"],
    )


def _dag_row(dag: Dag, serialized: SerializedDag) -> dict[str, Any]:
    return {
        "dag_id": dag.dag_id,
        "fileloc": dag.fileloc,
        "owners": dag.owners,
        "is_paused": dag.is_paused,
        "schedule": serialized.schedule,
        "task_count": len(serialized.tasks),
        "tags": list(serialized.tags),
        "next_dagrun": dag.next_dagrun,
    }


@click.command("list-import-errors")
@output_option
@pass_app
def list_import_errors(app: App, output: str) -> None:
    """DAG files that failed to import, with the reason."""
    with app.session_factory() as session:
        rows = session.scalars(select(ImportErrorRow).order_by(ImportErrorRow.filename)).all()
    emit(
        [{"filepath": r.filename, "error": r.message, "timestamp": r.timestamp} for r in rows],
        output,
        columns=["filepath", "error"],
    )


@click.command("list-runs")
@click.argument("dag_id")
@click.option("--state", "state_filter", help="Only runs in this state.")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
@output_option
@pass_app
def list_runs(app: App, dag_id: str, state_filter: str | None, limit: int, output: str) -> None:
    """The DAG's runs, newest first."""
    with app.session_factory() as session:
        if session.get(Dag, dag_id) is None:
            raise NotFoundError(f"DAG '{dag_id}' not found")
        query = select(DagRun).where(DagRun.dag_id == dag_id)
        if state_filter:
            query = query.where(DagRun.state == state_filter)
        runs = session.scalars(query.order_by(DagRun.logical_date.desc()).limit(limit)).all()
    emit(
        [run_row(r) for r in runs],
        output,
        columns=["dag_id", "run_id", "state", "logical_date", "start_date", "end_date"],
    )


def run_row(run: DagRun) -> dict[str, Any]:
    return {
        "dag_id": run.dag_id,
        "run_id": run.run_id,
        "state": run.state,
        "run_type": run.run_type,
        "logical_date": run.logical_date,
        "start_date": run.start_date,
        "end_date": run.end_date,
        "conf": run.conf,
    }
