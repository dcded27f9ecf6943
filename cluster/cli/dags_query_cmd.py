"""``tradewind dags list-import-errors|list-runs``: what the metastore holds.

They read rows only; no DAG file, no Alembic, no scheduler. (``dags list``, which
scripts poll, reads through the driver alone: :mod:`cluster.cli.dags_list_cmd`.)
"""

from __future__ import annotations

from typing import Any

import click
from sqlalchemy import select

from cluster.cli.app import App, pass_app
from cluster.cli.output import emit, output_option
from cluster.cli.params import DATETIME, VERBOSE
from cluster.errors import NotFoundError, UsageError
from cluster.metastore.models import Dag, DagRun, ImportErrorRow


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
@click.argument("dag_id", required=False)
@click.option("-d", "--dag-id", "dag_id_flag", help="The DAG (Airflow's form of DAG_ID).")
@click.option("--state", "state_filter", help="Only runs in this state.")
@click.option("--no-backfill", is_flag=True, help="Leave out backfill runs.")
@click.option("-s", "--start-date", type=DATETIME, help="Runs from this logical date.")
@click.option("-e", "--end-date", type=DATETIME, help="Runs up to this logical date.")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
@output_option
@VERBOSE
@pass_app
def list_runs(
    app: App, dag_id: str | None, dag_id_flag: str | None, output: str, **filters: Any
) -> None:
    """The DAG's runs, newest first (DAG_ID or, as in Airflow, -d DAG_ID)."""
    if dag_id and dag_id_flag and dag_id != dag_id_flag:
        raise UsageError(f"two DAGs given: {dag_id} and -d {dag_id_flag}")
    dag_id = dag_id or dag_id_flag
    if not dag_id:
        raise UsageError("give the DAG: tradewind dags list-runs -d DAG_ID")
    with app.session_factory() as session:
        if session.get(Dag, dag_id) is None:
            raise NotFoundError(f"DAG '{dag_id}' not found")
        query = select(DagRun).where(DagRun.dag_id == dag_id)
        if filters["state_filter"]:
            query = query.where(DagRun.state == filters["state_filter"])
        if filters["no_backfill"]:
            query = query.where(DagRun.run_type != "backfill")
        if filters["start_date"]:
            query = query.where(DagRun.logical_date >= filters["start_date"])
        if filters["end_date"]:
            query = query.where(DagRun.logical_date <= filters["end_date"])
        query = query.order_by(DagRun.logical_date.desc()).limit(filters["limit"])
        runs = session.scalars(query).all()
    emit(
        [run_row(r) for r in runs],
        output,
        columns=["dag_id", "run_id", "state", "logical_date", "start_date", "end_date"],
    )


def run_row(run: DagRun) -> dict[str, Any]:
    """A run as ``-o json|yaml`` prints it, with the keys Airflow's ``dags list-runs``
    (``execution_date``) and ``dags trigger`` (``dag_run_id``, data interval) print too,
    so scripts parsing Airflow's output find them."""
    return {
        "dag_id": run.dag_id,
        "run_id": run.run_id,
        "dag_run_id": run.run_id,
        "state": run.state,
        "run_type": run.run_type,
        "logical_date": run.logical_date,
        "execution_date": run.logical_date,
        "data_interval_start": run.data_interval_start,
        "data_interval_end": run.data_interval_end,
        "start_date": run.start_date,
        "end_date": run.end_date,
        "conf": run.conf,
    }
