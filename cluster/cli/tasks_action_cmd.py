"""``tradewind tasks list|clear``: a DAG's tasks from its serialized form, and clearing them
through :mod:`cluster.actions`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click
from sqlalchemy import select

from cluster import actions
from cluster.cli.app import App, pass_app
from cluster.cli.dags_action_cmd import CLI, matching_dag_ids
from cluster.cli.params import DATETIME, SUBDIR, accepted_flags
from cluster.cli.run_lookup import find_run
from cluster.cli.user_code import with_user_code
from cluster.metastore.models import DagRun, TaskInstance
from cluster.states import TaskState


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
@click.option("--run-id", help="Only this run (its id or its logical date).")
@click.option("-u", "--upstream", is_flag=True, help="Include upstream tasks.")
@click.option("-d", "--downstream", is_flag=True, help="Include downstream tasks.")
@click.option(
    "-f", "--only-failed", is_flag=True, help="Only failed and upstream_failed instances."
)
@click.option("-r", "--only-running", is_flag=True, help="Only running instances.")
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
@click.option(
    "-R", "--dag-regex", is_flag=True, help="DAG_ID is a regular expression over DAG ids."
)
@SUBDIR
@accepted_flags(("-X", "--exclude-parentdag"), ("-v", "--verbose"))
@pass_app
@with_user_code
def clear(app: App, dag_id: str, **options: Any) -> None:
    """Clear task instances so the scheduler runs them again.

    As in Airflow, an ExternalTaskMarker among them clears the task it names in the
    other DAG too, with that task's downstream (-x stops that). Airflow's flags mean what
    they mean there (``-r`` is ``--only-running``; a run is chosen with ``--run-id``
    only; ``-R`` makes DAG_ID a regular expression); ``-X`` is accepted: there are no
    parent DAGs.
    """
    chosen: dict[str, Any] = {
        "only_failed": options["only_failed"],
        "recursive": not options["exclude_subdags"],
        "map_indexes": set(options["map_indexes"]) or None,
    }
    with app.session_factory.begin() as session:
        dag_ids = matching_dag_ids(session, dag_id) if options["dag_regex"] else [dag_id]
        batches = [b for one in dag_ids for b in _clear_batches(session, one, options)]
        preview = [
            key
            for dag, run_ids, task_ids in batches
            for key in actions.clear(
                session, dag, run_ids, task_ids, actor=CLI, dry_run=True, **chosen
            )
        ]
        if not preview:
            click.echo("No task instances to clear")
            return
        for key in preview:
            other = f"{key.dag_id}." if key.dag_id != dag_id or options["dag_regex"] else ""
            index = f"[{key.map_index}]" if key.map_index >= 0 else ""
            click.echo(f"  {key.run_id}  {other}{key.task_id}{index}")
        if not options["yes"]:
            click.confirm(f"Clear these {len(preview)} task instances?", abort=True)
        cleared = sum(
            len(actions.clear(session, dag, run_ids, task_ids, actor=CLI, **chosen))
            for dag, run_ids, task_ids in batches
        )
    click.echo(f"Cleared {cleared} task instances")


def _clear_batches(
    session: Any, dag_id: str, options: dict[str, Any]
) -> list[tuple[str, list[str], set[str]]]:
    """The (DAG, runs, tasks) to clear: one batch, or with --only-running one per run,
    holding only the selected tasks that are running in it."""
    dag = actions.load_dag(session, dag_id)
    task_ids = actions.select_task_ids(
        dag,
        task_regex=options["task_regex"],
        upstream=options["upstream"],
        downstream=options["downstream"],
    )
    run_id = options["run_id"] and find_run(session, dag_id, options["run_id"]).run_id
    run_ids = _runs_between(session, dag_id, options["start_date"], options["end_date"], run_id)
    if not options["only_running"]:
        return [(dag_id, run_ids, task_ids)]
    running: dict[str, set[str]] = {}
    rows = session.execute(
        select(TaskInstance.run_id, TaskInstance.task_id).where(
            TaskInstance.dag_id == dag_id,
            TaskInstance.run_id.in_(run_ids),
            TaskInstance.state == TaskState.RUNNING.value,
        )
    )
    for run, task in rows:
        if task in task_ids:
            running.setdefault(run, set()).add(task)
    return [(dag_id, [run], tasks) for run, tasks in sorted(running.items())]


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
