"""``tradewind tasks test|render|run``: one task run (or rendered) by this command, in this
process or in a pool process as the scheduler runs it."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from typing import Any

import click
from sqlalchemy import select

from cluster import actions
from cluster.cli.app import App, pass_app
from cluster.cli.dags_action_cmd import CLI
from cluster.cli.dags_file_cmd import import_dag
from cluster.cli.params import DATETIME, JSON_OBJECT, MAP_INDEX, SUBDIR, accepted_flags
from cluster.cli.run_lookup import find_run
from cluster.cli.user_code import with_user_code
from cluster.errors import NotFoundError, UsageError
from cluster.execution.inprocess import InProcessTaskInstance, run_task
from cluster.execution.worker import single_try_runner
from cluster.messages import TaskMessage
from cluster.metastore import audit
from cluster.metastore.models import DagRun, TaskInstance
from cluster.metastore.transitions import TaskKey, set_task_state
from cluster.sdk import DAG
from cluster.sdk.context import RunInfo, build_context
from cluster.sdk.templating import render_template_fields
from cluster.states import TaskState


def _test_run(dag_id: str, when: datetime) -> RunInfo:
    return RunInfo(
        dag_id=dag_id,
        run_id=f"manual__{when.isoformat()}",
        logical_date=when,
        data_interval_start=when,
        data_interval_end=when,
        run_type="manual",
        conf={},
        start_date=datetime.now(UTC),
    )


def _logical_date(app: App, dag_id: str, when: str | None) -> datetime:
    """Now, the ISO date given, or the logical date of the run whose id is given."""
    if when is None:
        return datetime.now(UTC)
    try:
        return DATETIME.convert(when, None, None)
    except click.BadParameter:
        with app.session_factory() as session:
            run = session.scalars(
                select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == when)
            ).first()
        if run is None:
            raise UsageError(
                f"{when!r} is neither an ISO date (e.g. 2024-01-31) nor a run of '{dag_id}'"
            ) from None
        logical_date = run.logical_date
    if logical_date is None:
        raise UsageError(f"run '{when}' of '{dag_id}' has no logical date: give a date")
    return logical_date


@click.command("test")
@click.argument("dag_id")
@click.argument("task_id")
@click.argument("when", metavar="[EXECUTION_DATE_OR_RUN_ID]", required=False)
@MAP_INDEX
@click.option("-n", "--dry-run", is_flag=True, help="Only print the rendered template fields.")
@click.option(
    "--env-vars", type=JSON_OBJECT, help="Environment variables to set first, as a JSON object."
)
@SUBDIR
@accepted_flags(("-v", "--verbose"))
@pass_app
@with_user_code
def test(
    app: App,
    dag_id: str,
    task_id: str,
    when: str | None,
    map_index: int,
    dry_run: bool,
    env_vars: dict[str, Any] | None,
) -> None:
    """Run one task in this process, ignoring dependencies; nothing is recorded.

    The run is named by a logical date or by the id of an existing run (whose logical
    date it takes), as Airflow's EXECUTION_DATE_OR_RUN_ID is. As in Airflow, --env-vars
    are set in this process before the DAG file is read, and --dry-run only renders.
    """
    os.environ.update({k: str(v) for k, v in (env_vars or {}).items()})
    dag = import_dag(app, dag_id)
    if not dag.has_task(task_id):
        raise NotFoundError(f"DAG '{dag_id}' has no task '{task_id}'")
    if dag.get_task(task_id).is_mapped and map_index < 0:
        raise UsageError(f"task '{task_id}' is mapped: give the instance with --map-index")
    logical_date = _logical_date(app, dag_id, when)
    if dry_run:
        _print_rendered(dag, task_id, logical_date)
        return
    result = run_task(dag, task_id, _test_run(dag_id, logical_date), map_index=map_index)
    click.echo(
        f"{task_id}: {result.state} in {result.duration:.3f}s"
        + (f" ({result.message})" if result.message else "")
    )
    if result.state is TaskState.FAILED:
        raise SystemExit(1)


@click.command("render")
@click.argument("dag_id")
@click.argument("task_id")
@click.argument("logical_date", required=False, type=DATETIME)
@pass_app
@with_user_code
def render(app: App, dag_id: str, task_id: str, logical_date: datetime | None) -> None:
    """Print the task's template fields rendered for a logical date."""
    dag = import_dag(app, dag_id)
    if not dag.has_task(task_id):
        raise NotFoundError(f"DAG '{dag_id}' has no task '{task_id}'")
    _print_rendered(dag, task_id, logical_date or datetime.now(UTC))


def _print_rendered(dag: DAG, task_id: str, when: datetime) -> None:
    task = dag.get_task(task_id)
    run = _test_run(dag.dag_id, when)
    ti = InProcessTaskInstance(dag.dag_id, task_id, run.run_id, {})
    rendered = render_template_fields(
        task, build_context(dag=dag, task=task, ti=ti, dag_run=run, test_mode=True)
    )
    for name, value in rendered.items():
        text = value if isinstance(value, str) else json.dumps(value, indent=2, default=str)
        click.echo(
            f"# ----------------------------------------------------------\n# property: {name}\n"
            f"# ----------------------------------------------------------\n{text}\n"
        )


@click.command("run")
@click.argument("dag_id")
@click.argument("task_id")
@click.argument("run_id", metavar="EXECUTION_DATE_OR_RUN_ID")
@MAP_INDEX
@SUBDIR
@accepted_flags(
    ("-f", "--force"),
    ("-l", "--local"),
    ("-A", "--ignore-all-dependencies"),
    ("-i", "--ignore-dependencies"),
    ("-I", "--ignore-depends-on-past"),
    ("-N", "--interactive"),
    ("--read-from-db",),
    ("-v", "--verbose"),
)
@pass_app
@with_user_code
def run(app: App, dag_id: str, task_id: str, run_id: str, map_index: int) -> None:
    """Run one task instance now, in a pool process as the scheduler runs it, and record it.

    The run is named by its id or its logical date. Airflow's -f, -l, -A, -i, -I are
    accepted and change nothing: this command always runs the instance whatever its
    state and dependencies, in a local pool process.
    """
    with app.session_factory.begin() as session:
        dag_run = find_run(session, dag_id, run_id)
        fingerprint = dag_run.fingerprint or actions.load_dag(session, dag_id).fingerprint()
        ti = session.get(TaskInstance, (dag_id, dag_run.run_id, task_id, map_index))
        if ti is None:
            raise NotFoundError(
                f"no instance of task '{task_id}' (map index {map_index}) in run "
                f"'{dag_run.run_id}' (is the run started, the task expanded?)"
            )
        key = TaskKey(dag_id, dag_run.run_id, task_id, map_index)
        if TaskState(ti.state) is not TaskState.NONE:
            set_task_state(
                session, key, TaskState.NONE, expected=[TaskState(ti.state)], by_user=True
            )
        next_try = ti.try_number + 1
        set_task_state(session, key, TaskState.SCHEDULED, expected=[TaskState.NONE])
        set_task_state(
            session,
            key,
            TaskState.QUEUED,
            expected=[TaskState.SCHEDULED],
            values={"try_number": next_try, "queued_at": datetime.now(UTC)},
        )
        audit.record_event(
            session=session,
            event="cli.tasks.run",
            username=CLI.username,
            dag_id=dag_id,
            run_id=dag_run.run_id,
            task_id=task_id,
        )
    message = TaskMessage(dag_id, dag_run.run_id, task_id, map_index, next_try, fingerprint)
    app.engine.dispose()  # the pool process is forked: it must not inherit pooled connections
    with single_try_runner(app.settings) as runner:
        (result,) = runner.run([message])
    click.echo(f"{task_id}: {result.state}")
    if result.state is not TaskState.SUCCESS:
        raise SystemExit(1)
