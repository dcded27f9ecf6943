"""``tradewind tasks states-for-dag-run``: a run's task instances as the metastore holds them.

Read through the database driver alone (no SQLAlchemy, see
:mod:`cluster.metastore.dbapi`): scripts poll it.
"""

from __future__ import annotations

import click

from cluster.cli.output import emit, output_option
from cluster.cli.settings_app import SettingsApp, pass_settings_app
from cluster.metastore.status_reads import find_run, task_instances_of


@click.command("states-for-dag-run")
@click.argument("dag_id")
@click.argument("run_id")
@output_option
@pass_settings_app
def states_for_dag_run(app: SettingsApp, dag_id: str, run_id: str, output: str) -> None:
    """Every task instance of one run with its state, try and times."""
    with app.reader() as reader:
        dag_run = find_run(reader, dag_id, run_id)
        rows = task_instances_of(reader, dag_id, dag_run.run_id)
    emit(
        [
            {
                "dag_id": dag_id,
                "logical_date": dag_run.logical_date,
                "run_id": dag_run.run_id,
                "task_id": t["task_id"],
                "state": t["state"],
                "start_date": t["start_date"],
                "end_date": t["end_date"],
                "try_number": t["try_number"],
                "hostname": t["hostname"],
            }
            for t in rows
        ],
        output,
        columns=["dag_id", "run_id", "task_id", "state", "start_date", "end_date", "try_number"],
    )
