"""``tradewind dags state`` and ``tradewind tasks state``: one run's or one task
instance's state.

Scripts poll these (a monitor asking twice a second), so their module imports the
least a metastore read needs: the database driver alone (no SQLAlchemy, see
:mod:`cluster.metastore.dbapi`), no output formats, no actions, no DAG files.
"""

from __future__ import annotations

import click

from cluster.cli.params import MAP_INDEX, SUBDIR, VERBOSE
from cluster.cli.settings_app import SettingsApp, pass_settings_app
from cluster.errors import NotFoundError
from cluster.metastore.status_reads import find_run, task_instance_state


@click.command("state")
@click.argument("dag_id")
@click.argument("run_id", metavar="EXECUTION_DATE_OR_RUN_ID")
@SUBDIR
@VERBOSE
@pass_settings_app
def dag_run_state(app: SettingsApp, dag_id: str, run_id: str) -> None:
    """The state of one run (by run id or by logical date)."""
    with app.reader() as reader:
        run = find_run(reader, dag_id, run_id)
    click.echo(run.state)


@click.command("state")
@click.argument("dag_id")
@click.argument("task_id")
@click.argument("run_id", metavar="EXECUTION_DATE_OR_RUN_ID")
@MAP_INDEX
@SUBDIR
@VERBOSE
@pass_settings_app
def task_instance_state_command(
    app: SettingsApp, dag_id: str, task_id: str, run_id: str, map_index: int
) -> None:
    """The state of one task instance."""
    with app.reader() as reader:
        dag_run = find_run(reader, dag_id, run_id)
        state = task_instance_state(reader, dag_id, dag_run.run_id, task_id, map_index)
    if state is None:
        where = f" (map index {map_index})" if map_index >= 0 else ""
        raise NotFoundError(f"no instance of task '{task_id}'{where} in run '{dag_run.run_id}'")
    click.echo(state)
