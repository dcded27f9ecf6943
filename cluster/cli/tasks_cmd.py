"""``tradewind tasks …``: list, test, run, clear, render and inspect task instances."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import click
from sqlalchemy import select

from cluster import actions
from cluster.cli.app import App, pass_app
from cluster.cli.dags_cmd import CLI, find_run, import_dag
from cluster.cli.output import emit, output_option
from cluster.cli.params import DATETIME
from cluster.errors import NotFoundError
from cluster.execution.inprocess import InProcessTaskInstance, run_task
from cluster.execution.worker import single_try_runner
from cluster.messages import TaskMessage
from cluster.metastore.models import DagRun, TaskInstance
from cluster.metastore.transitions import TaskKey, set_task_state
from cluster.sdk.context import RunInfo, build_context
from cluster.sdk.templating import render_template_fields
from cluster.states import TaskState


@click.group("tasks")
def tasks_group() -> None:
    """Manage task instances."""


@tasks_group.command("list")
@click.argument("dag_id")
@click.option("-t", "--tree", is_flag=True, help="Show each task with its downstream tasks.")
@pass_app
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


@tasks_group.command("test")
@click.argument("dag_id")
@click.argument("task_id")
@click.argument("logical_date", required=False, type=DATETIME)
@pass_app
def test(app: App, dag_id: str, task_id: str, logical_date: datetime | None) -> None:
    """Run one task in this process, ignoring dependencies; nothing is recorded."""
    dag = import_dag(app, dag_id)
    if not dag.has_task(task_id):
        raise NotFoundError(f"DAG '{dag_id}' has no task '{task_id}'")
    result = run_task(dag, task_id, _test_run(dag_id, logical_date or datetime.now(UTC)))
    click.echo(
        f"{task_id}: {result.state} in {result.duration:.3f}s"
        + (f" ({result.message})" if result.message else "")
    )
    if result.state is TaskState.FAILED:
        raise SystemExit(1)


@tasks_group.command("render")
@click.argument("dag_id")
@click.argument("task_id")
@click.argument("logical_date", required=False, type=DATETIME)
@pass_app
def render(app: App, dag_id: str, task_id: str, logical_date: datetime | None) -> None:
    """Print the task's template fields rendered for a logical date."""
    dag = import_dag(app, dag_id)
    if not dag.has_task(task_id):
        raise NotFoundError(f"DAG '{dag_id}' has no task '{task_id}'")
    task = dag.get_task(task_id)
    run = _test_run(dag_id, logical_date or datetime.now(UTC))
    ti = InProcessTaskInstance(dag_id, task_id, run.run_id, {})
    rendered = render_template_fields(
        task, build_context(dag=dag, task=task, ti=ti, dag_run=run, test_mode=True)
    )
    for name, value in rendered.items():
        text = value if isinstance(value, str) else json.dumps(value, indent=2, default=str)
        click.echo(
            f"# ----------------------------------------------------------\n# property: {name}\n"
            f"# ----------------------------------------------------------\n{text}\n"
        )


@tasks_group.command("run")
@click.argument("dag_id")
@click.argument("task_id")
@click.argument("run_id")
@pass_app
def run(app: App, dag_id: str, task_id: str, run_id: str) -> None:
    """Run one task instance now, in a pool process as the scheduler runs it, and record it."""
    with app.session_factory.begin() as session:
        dag_run = find_run(session, dag_id, run_id)
        fingerprint = dag_run.fingerprint or actions.load_dag(session, dag_id).fingerprint()
        ti = session.get(TaskInstance, (dag_id, dag_run.run_id, task_id, -1))
        if ti is None:
            raise NotFoundError(
                f"no instance of task '{task_id}' in run '{dag_run.run_id}' (is the run started?)"
            )
        key = TaskKey(dag_id, dag_run.run_id, task_id)
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
        actions.audit.record_event(
            session=session,
            event="cli.tasks.run",
            username=CLI.username,
            dag_id=dag_id,
            run_id=dag_run.run_id,
            task_id=task_id,
        )
    message = TaskMessage(dag_id, dag_run.run_id, task_id, -1, next_try, fingerprint)
    app.engine.dispose()  # the pool process is forked: it must not inherit pooled connections
    with single_try_runner(app.settings) as runner:
        (result,) = runner.run([message])
    click.echo(f"{task_id}: {result.state}")
    if result.state is not TaskState.SUCCESS:
        raise SystemExit(1)


@tasks_group.command("clear")
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
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_app
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
    yes: bool,
) -> None:
    """Clear task instances so the scheduler runs them again."""
    with app.session_factory.begin() as session:
        dag = actions.load_dag(session, dag_id)
        task_ids = actions.select_task_ids(
            dag, task_regex=task_regex, upstream=upstream, downstream=downstream
        )
        run_ids = _runs_between(session, dag_id, start_date, end_date, run_id)
        preview = actions.clear(
            session, dag_id, run_ids, task_ids, actor=CLI, only_failed=only_failed, dry_run=True
        )
        if not preview:
            click.echo("No task instances to clear")
            return
        for key in preview:
            click.echo(f"  {key.run_id}  {key.task_id}")
        if not yes:
            click.confirm(f"Clear these {len(preview)} task instances?", abort=True)
        cleared = actions.clear(
            session, dag_id, run_ids, task_ids, actor=CLI, only_failed=only_failed
        )
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


@tasks_group.command("state")
@click.argument("dag_id")
@click.argument("task_id")
@click.argument("run_id")
@pass_app
def state(app: App, dag_id: str, task_id: str, run_id: str) -> None:
    """The state of one task instance."""
    with app.session_factory() as session:
        dag_run = find_run(session, dag_id, run_id)
        ti = session.get(TaskInstance, (dag_id, dag_run.run_id, task_id, -1))
    if ti is None:
        raise NotFoundError(f"no instance of task '{task_id}' in run '{dag_run.run_id}'")
    click.echo(ti.state)


@tasks_group.command("states-for-dag-run")
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
