"""``tradewind tasks states-for-dag-run``: a run's task instances as the metastore holds them."""

from __future__ import annotations

import click
from sqlalchemy import select

from cluster.cli.app import App, pass_app
from cluster.cli.output import emit, output_option
from cluster.cli.state_cmd import find_run
from cluster.metastore.models import TaskInstance


@click.command("states-for-dag-run")
@click.argument("dag_id")
@click.argument("run_id")
@output_option
@pass_app
def states_for_dag_run(app: App, dag_id: str, run_id: str, output: str) -> None:
    """Every task instance of one run with its state, try and times."""
    with app.session_factory() as session:
        dag_run = find_run(session, dag_id, run_id)
        rows = session.scalars(
            select(TaskInstance)
            .where(TaskInstance.dag_id == dag_id, TaskInstance.run_id == dag_run.run_id)
            .order_by(TaskInstance.task_id)
        ).all()
    emit(
        [
            {
                "dag_id": t.dag_id,
                "logical_date": dag_run.logical_date,
                "run_id": t.run_id,
                "task_id": t.task_id,
                "state": t.state,
                "start_date": t.start_date,
                "end_date": t.end_date,
                "try_number": t.try_number,
                "hostname": t.hostname,
            }
            for t in rows
        ],
        output,
        columns=["dag_id", "run_id", "task_id", "state", "start_date", "end_date", "try_number"],
    )
