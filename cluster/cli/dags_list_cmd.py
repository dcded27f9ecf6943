"""``tradewind dags list``: every active DAG from its row and serialized form.

Read through the database driver alone (no SQLAlchemy, see
:mod:`cluster.metastore.dbapi`): scripts poll it. No DAG file is imported.
"""

from __future__ import annotations

from typing import Any

import click

from cluster.cli.output import emit, output_option
from cluster.cli.settings_app import SettingsApp, pass_settings_app
from cluster.dagfiles.serialized import DagSummary, summary_from_json
from cluster.metastore.status_reads import DagListing, active_dags


@click.command("list")
@output_option
@pass_settings_app
def list_dags(app: SettingsApp, output: str) -> None:
    """Every active DAG with its schedule and task count."""
    with app.reader() as reader:
        rows = active_dags(reader)
    emit(
        [_dag_row(dag, summary_from_json(dag.serialized)) for dag in rows],
        output,
        columns=["dag_id", "fileloc", "owners", "is_paused", "schedule", "task_count"],
    )


def _dag_row(dag: DagListing, serialized: DagSummary) -> dict[str, Any]:
    return {
        "dag_id": dag.dag_id,
        "fileloc": dag.fileloc,
        "owners": dag.owners,
        "is_paused": dag.is_paused,
        "schedule": serialized.schedule,
        "task_count": serialized.task_count,
        "tags": list(serialized.tags),
        "next_dagrun": dag.next_dagrun,
    }
