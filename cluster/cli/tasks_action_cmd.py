"""``tradewind tasks list|clear``: a DAG's tasks from its serialized form, and clearing them
through :mod:`cluster.actions`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click
from sqlalchemy import select

from cluster import actions
from cluster.cli.app import App, pass_app
from cluster.cli.dags_action_cmd import CLI
from cluster.cli.params import DATETIME
from cluster.cli.user_code import with_user_code
from cluster.metastore.models import DagRun


@click.command("list")
@click.argument("dag_id")
@click.option("-t", "--tree", is_flag=True, help="Show each task with its downstream tasks.")
@pass_app
@with_user_code
def list_tasks(app: App, dag_id: str, tree: bool) -> None:
    """The DAG's task ids (from its serialized form)."""
    with app.session_factory() as session:
        dag = actions.load_dag(session, dag_id)
    for task in sorted(dag.tasks.values(), key=lambda t: t.task_id):
        suffix = (
            f" >> {', '.join(sorted(task.downstream_task_ids))}"
            if tree and task.downstream_task_ids
            else ""
        )
        click.echo(f"{task.task_id}{suffix}")


@click.command("clear")
@click.argument("dag_id")
@click.option("-t", "--task-regex", help="Only tasks whose id matches this regular expression.")
@click.option("-s", "--start-date", type=DATETIME, help="Runs from this logical date.")
@click.option("-e", "--end-date", type=DATETIME, help="Runs up to this logical date.")
@click.option("-r", "--run-id", help="Only this run.")
@click.option("-u", "--upstream", is_flag=True, help="Include upstream tasks.")
@click.option("-d", "--downstream", is_flag=True, help="Include downstream tasks.")
@click.option(
    "-f", "--only-failed", is_flag=True, help="Only failed and upstream_failed instances."
)
@click.option(
    "-x",
    "--exclude-subdags",
    is_flag=True,
    help="Do not follow ExternalTaskMarkers into other DAGs (Airflow's option name).",
)
@click.option(
    "-m", "--map-index", "map_indexes", type=int, multiple=True,
    help="Only these instances of mapped tasks (repeatable).",
)  # fmt: skip
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_app
@with_user_code
def clear(
    app: App,
    dag_id: str,
    task_regex: str | None,
    start_date: datetime | None,
    end_date: datetime | None,
    run_id: str | None,
    upstream: bool,
    downstream: bool,
    only_failed: bool,
    exclude_subdags: bool,
    map_indexes: tuple[int, ...],
    yes: bool,
) -> None:
    """Clear task instances so the scheduler runs them again.

    As in Airflow, an ExternalTaskMarker among them clears the task it names in the
    other DAG too, with that task's downstream (-x stops that).
    """
    with app.session_factory.begin() as session:
        dag = actions.load_dag(session, dag_id)
        task_ids = actions.select_task_ids(
            dag, task_regex=task_regex, upstream=upstream, downstream=downstream
        )
        run_ids = _runs_between(session, dag_id, start_date, end_date, run_id)
        options: dict[str, Any] = {"only_failed": only_failed, "recursive": not exclude_subdags}
        options["map_indexes"] = set(map_indexes) if map_indexes else None
        preview = actions.clear(
            session, dag_id, run_ids, task_ids, actor=CLI, dry_run=True, **options
        )
        if not preview:
            click.echo("No task instances to clear")
            return
        for key in preview:
            other = f"{key.dag_id}." if key.dag_id != dag_id else ""
            index = f"[{key.map_index}]" if key.map_index >= 0 else ""
            click.echo(f"  {key.run_id}  {other}{key.task_id}{index}")
        if not yes:
            click.confirm(f"Clear these {len(preview)} task instances?", abort=True)
        cleared = actions.clear(session, dag_id, run_ids, task_ids, actor=CLI, **options)
    click.echo(f"Cleared {len(cleared)} task instances")


def _runs_between(
    session: Any, dag_id: str, start: datetime | None, end: datetime | None, run_id: str | None
) -> list[str]:
    query = select(DagRun.run_id).where(DagRun.dag_id == dag_id)
    if run_id:
        query = query.where(DagRun.run_id == run_id)
    if start:
        query = query.where(DagRun.logical_date >= start)
    if end:
        query = query.where(DagRun.logical_date <= end)
    return list(session.scalars(query))
