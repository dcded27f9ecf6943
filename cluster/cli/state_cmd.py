"""``tradewind dags state`` and ``tradewind tasks state``: one run's or one task
instance's state.

Scripts poll these (a monitor asking twice a second), so their module imports the
least a metastore read needs: no output formats, no actions, no DAG files.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import click
from sqlalchemy import select

from cluster.cli.app import App, pass_app
from cluster.cli.params import MAP_INDEX, SUBDIR, VERBOSE
from cluster.errors import NotFoundError
from cluster.metastore.models import DagRun, TaskInstance


@click.command("state")
@click.argument("dag_id")
@click.argument("run_id", metavar="EXECUTION_DATE_OR_RUN_ID")
@SUBDIR
@VERBOSE
@pass_app
def dag_run_state(app: App, dag_id: str, run_id: str) -> None:
    """The state of one run (by run id or by logical date)."""
    with app.session_factory() as session:
        run = find_run(session, dag_id, run_id)
    click.echo(run.state)


def find_run(session: Any, dag_id: str, run_id_or_date: str) -> DagRun:
    """A run by its id, or by its logical date given as ISO text."""
    query = select(DagRun).where(DagRun.dag_id == dag_id)
    run = session.scalars(query.where(DagRun.run_id == run_id_or_date)).first()
    if run is None:
        try:
            when = datetime.fromisoformat(run_id_or_date)
        except ValueError:
            when = None
        if when is not None:
            when = when if when.tzinfo else when.replace(tzinfo=UTC)
            run = session.scalars(query.where(DagRun.logical_date == when)).first()
    if run is None:
        raise NotFoundError(
            f"DAG run '{run_id_or_date}' of '{dag_id}' not found (tradewind dags list-runs {dag_id})"
        )
    return run


@click.command("state")
@click.argument("dag_id")
@click.argument("task_id")
@click.argument("run_id", metavar="EXECUTION_DATE_OR_RUN_ID")
@MAP_INDEX
@SUBDIR
@VERBOSE
@pass_app
def task_instance_state(app: App, dag_id: str, task_id: str, run_id: str, map_index: int) -> None:
    """The state of one task instance."""
    with app.session_factory() as session:
        dag_run = find_run(session, dag_id, run_id)
        ti = session.get(TaskInstance, (dag_id, dag_run.run_id, task_id, map_index))
    if ti is None:
        where = f" (map index {map_index})" if map_index >= 0 else ""
        raise NotFoundError(f"no instance of task '{task_id}'{where} in run '{dag_run.run_id}'")
    click.echo(ti.state)
