"""``tradewind dags reserialize|test``: the commands that import DAG files in this process."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from sqlalchemy import select

from cluster.cli.app import App, pass_app
from cluster.cli.output import emit
from cluster.cli.params import DATETIME, JSON_OBJECT, SUBDIR, accepted_flags
from cluster.cli.user_code import with_user_code
from cluster.dagfiles.importer import dags_in_module, load_module
from cluster.dagfiles.processor import DagProcessor, dag_folders
from cluster.errors import NotFoundError
from cluster.execution.inprocess import test_dag
from cluster.metastore.models import Dag
from cluster.sdk import DAG


@click.command("reserialize")
@pass_app
@with_user_code
def reserialize(app: App) -> None:
    """Process the DAGs folder now and store every DAG's serialized form."""
    core = app.settings.core
    processor = DagProcessor(
        folders=dag_folders(core.dags_folder, load_examples=core.load_examples),
        sessions=app.session_factory,
        timeout=core.dag_file_processor_timeout,
        paused_at_creation=core.dags_are_paused_at_creation,
        parallelism=app.settings.scheduler.parsing_processes,
    )
    report = processor.process(force=True)
    click.echo(
        f"{report.files} files, {report.dags} DAGs serialized, {len(report.errors)} import errors"
    )
    for path, error in report.errors.items():
        click.echo(f"  {path}: {error}", err=True)


@click.command("test")
@click.argument("dag_id")
@click.argument("logical_date", required=False, type=DATETIME)
@click.option("-c", "--conf", type=JSON_OBJECT)
@SUBDIR
@accepted_flags(("-v", "--verbose"))
@pass_app
@with_user_code
def test(app: App, dag_id: str, logical_date: datetime | None, conf: dict[str, Any] | None) -> None:
    """Run one whole DAG run in this process and print every task's state and duration."""
    dag = import_dag(app, dag_id)
    outcome, results = test_dag(dag, logical_date=logical_date or datetime.now(UTC), conf=conf)
    emit(
        [
            {
                "task_id": r.task_id,
                "map_index": r.map_index,
                "state": str(r.state),
                "duration": f"{r.duration:.3f}s",
                "message": r.message or "",
            }
            for r in results.values()
        ],
        "table",
    )
    click.echo(f"DAG run {outcome}")
    if outcome != "success":
        raise SystemExit(1)


def import_dag(app: App, dag_id: str) -> DAG:
    """Import the DAG's file in this process (``dags test``, ``tasks test|render``)."""
    with app.session_factory() as session:
        fileloc = session.scalar(select(Dag.fileloc).where(Dag.dag_id == dag_id))
    candidates = [Path(fileloc)] if fileloc else _all_files(app)
    for path in candidates:
        for dag in dags_in_module(load_module(path, search_path=path.parent)):
            if dag.dag_id == dag_id:
                return dag
    raise NotFoundError(f"DAG '{dag_id}' not found in the DAGs folder")


def _all_files(app: App) -> list[Path]:
    from_folders = dag_folders(
        app.settings.core.dags_folder, load_examples=app.settings.core.load_examples
    )
    return [p for folder in from_folders for p in sorted(folder.rglob("*.py"))]
