"""``tradewind dags …``: list, inspect, trigger, pause, test and backfill DAGs.

Listings read the metastore (the serialized form), never DAG files; ``reserialize``
processes the DAGs folder now, and ``test`` imports the file to run it in-process.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from rich.progress import Progress, TextColumn
from sqlalchemy import select

from cluster import actions
from cluster.cli.app import App, os_user, pass_app
from cluster.cli.output import emit, output_option
from cluster.cli.params import DATETIME, JSON_OBJECT
from cluster.dagfiles.importer import dags_in_module, load_module
from cluster.dagfiles.processor import DagProcessor, dag_folders
from cluster.dagfiles.serialized import SerializedDag
from cluster.errors import NotFoundError, UsageError
from cluster.execution.inprocess import test_dag
from cluster.metastore.models import Dag, DagRun, ImportErrorRow, SerializedDagRow
from cluster.sdk import DAG

CLI = actions.Actor(os_user() or "cli")


@click.group("dags")
def dags_group() -> None:
    """Manage DAGs."""


@dags_group.command("list")
@output_option
@pass_app
def list_dags(app: App, output: str) -> None:
    """Every active DAG with its schedule and task count."""
    with app.session_factory() as session:
        rows = session.execute(
            select(Dag, SerializedDagRow.data)
            .join(SerializedDagRow, SerializedDagRow.dag_id == Dag.dag_id)
            .where(Dag.is_active)
            .order_by(Dag.dag_id)
        ).all()
    listing = [_dag_row(dag, SerializedDag.from_json(data)) for dag, data in rows]
    emit(
        listing,
        output,
        columns=["dag_id", "fileloc", "owners", "is_paused", "schedule", "task_count"],
    )


def _dag_row(dag: Dag, serialized: SerializedDag) -> dict[str, Any]:
    return {
        "dag_id": dag.dag_id,
        "fileloc": dag.fileloc,
        "owners": dag.owners,
        "is_paused": dag.is_paused,
        "schedule": serialized.schedule,
        "task_count": len(serialized.tasks),
        "tags": list(serialized.tags),
        "next_dagrun": dag.next_dagrun,
    }


@dags_group.command("list-import-errors")
@output_option
@pass_app
def list_import_errors(app: App, output: str) -> None:
    """DAG files that failed to import, with the reason."""
    with app.session_factory() as session:
        rows = session.scalars(select(ImportErrorRow).order_by(ImportErrorRow.filename)).all()
    emit(
        [{"filepath": r.filename, "error": r.message, "timestamp": r.timestamp} for r in rows],
        output,
        columns=["filepath", "error"],
    )


@dags_group.command("reserialize")
@pass_app
def reserialize(app: App) -> None:
    """Process the DAGs folder now and store every DAG's serialized form."""
    core = app.settings.core
    processor = DagProcessor(
        folders=dag_folders(core.dags_folder, load_examples=core.load_examples),
        sessions=app.session_factory,
        timeout=core.dag_file_processor_timeout,
        paused_at_creation=core.dags_are_paused_at_creation,
    )
    report = processor.process(force=True)
    click.echo(
        f"{report.files} files, {report.dags} DAGs serialized, {len(report.errors)} import errors"
    )
    for path, error in report.errors.items():
        click.echo(f"  {path}: {error}", err=True)


@dags_group.command("show")
@click.argument("dag_id")
@click.option(
    "-o", "--output", type=click.Choice(["json", "dot"]), default="dot", show_default=True
)
@pass_app
def show(app: App, dag_id: str, output: str) -> None:
    """The DAG's structure from its serialized form, as JSON or a Graphviz graph."""
    with app.session_factory() as session:
        dag = actions.load_dag(session, dag_id)
    if output == "json":
        click.echo(json.dumps(_structure(dag), indent=2))
    else:
        click.echo(_dot(dag))


def _structure(dag: SerializedDag) -> dict[str, Any]:
    return {
        "dag_id": dag.dag_id,
        "fileloc": dag.fileloc,
        "schedule": dag.schedule,
        "catchup": dag.catchup,
        "tasks": [
            {
                "task_id": t.task_id,
                "operator": t.operator,
                "trigger_rule": t.trigger_rule,
                "downstream_task_ids": sorted(t.downstream_task_ids),
            }
            for t in dag.tasks.values()
        ],
    }


def _dot(dag: SerializedDag) -> str:
    lines = [f'digraph "{dag.dag_id}" {{', "  rankdir=LR;", "  node [shape=box];"]
    for task in dag.tasks.values():
        lines.append(f'  "{task.task_id}";')
        for down in sorted(task.downstream_task_ids):
            label = dag.edge_labels.get(f"{task.task_id}>{down}")
            suffix = f' [label="{label}"]' if label else ""
            lines.append(f'  "{task.task_id}" -> "{down}"{suffix};')
    lines.append("}")
    return "\n".join(lines)


@dags_group.command("trigger")
@click.argument("dag_id")
@click.option("-c", "--conf", type=JSON_OBJECT, help="JSON object passed to the run as conf.")
@click.option("-r", "--run-id", help="Run id (default manual__<logical date>).")
@click.option("-l", "--logical-date", "logical_date", type=DATETIME, help="ISO date or datetime.")
@output_option
@pass_app
def trigger(
    app: App,
    dag_id: str,
    conf: dict[str, Any] | None,
    run_id: str | None,
    logical_date: datetime | None,
    output: str,
) -> None:
    """Create a manual run; the scheduler runs it (a paused DAG's run waits)."""
    with app.session_factory.begin() as session:
        run = actions.trigger(
            session, dag_id, actor=CLI, conf=conf, run_id=run_id, logical_date=logical_date
        )
        paused = session.scalar(select(Dag.is_paused).where(Dag.dag_id == dag_id))
        row = _run_row(run)
    emit([row], output, columns=["dag_id", "run_id", "state", "logical_date", "conf"])
    if paused:
        click.echo(f"note: DAG '{dag_id}' is paused; the run starts once it is unpaused", err=True)


@dags_group.command("pause")
@click.argument("dag_id")
@pass_app
def pause(app: App, dag_id: str) -> None:
    """Pause a DAG: no new scheduled runs, no new tasks queued."""
    with app.session_factory.begin() as session:
        actions.set_paused(session, dag_id, True, actor=CLI)
    click.echo(f"Dag: {dag_id}, paused: True")


@dags_group.command("unpause")
@click.argument("dag_id")
@pass_app
def unpause(app: App, dag_id: str) -> None:
    """Unpause a DAG."""
    with app.session_factory.begin() as session:
        actions.set_paused(session, dag_id, False, actor=CLI)
    click.echo(f"Dag: {dag_id}, paused: False")


@dags_group.command("state")
@click.argument("dag_id")
@click.argument("run_id")
@pass_app
def state(app: App, dag_id: str, run_id: str) -> None:
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


@dags_group.command("list-runs")
@click.argument("dag_id")
@click.option("--state", "state_filter", help="Only runs in this state.")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
@output_option
@pass_app
def list_runs(app: App, dag_id: str, state_filter: str | None, limit: int, output: str) -> None:
    """The DAG's runs, newest first."""
    with app.session_factory() as session:
        if session.get(Dag, dag_id) is None:
            raise NotFoundError(f"DAG '{dag_id}' not found")
        query = select(DagRun).where(DagRun.dag_id == dag_id)
        if state_filter:
            query = query.where(DagRun.state == state_filter)
        runs = session.scalars(query.order_by(DagRun.logical_date.desc()).limit(limit)).all()
    emit(
        [_run_row(r) for r in runs],
        output,
        columns=["dag_id", "run_id", "state", "logical_date", "start_date", "end_date"],
    )


def _run_row(run: DagRun) -> dict[str, Any]:
    return {
        "dag_id": run.dag_id,
        "run_id": run.run_id,
        "state": run.state,
        "run_type": run.run_type,
        "logical_date": run.logical_date,
        "start_date": run.start_date,
        "end_date": run.end_date,
        "conf": run.conf,
    }


@dags_group.command("delete")
@click.argument("dag_id")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_app
def delete(app: App, dag_id: str, yes: bool) -> None:
    """Delete every record of a DAG (its file stays)."""
    if not yes:
        click.confirm(f"Delete all records of DAG '{dag_id}'?", abort=True)
    with app.session_factory.begin() as session:
        runs = actions.delete_dag(session, dag_id, actor=CLI)
    click.echo(f"Deleted DAG '{dag_id}' and {runs} runs")


@dags_group.command("test")
@click.argument("dag_id")
@click.argument("logical_date", required=False, type=DATETIME)
@click.option("-c", "--conf", type=JSON_OBJECT)
@pass_app
def test(app: App, dag_id: str, logical_date: datetime | None, conf: dict[str, Any] | None) -> None:
    """Run one whole DAG run in this process and print every task's state and duration."""
    dag = import_dag(app, dag_id)
    outcome, results = test_dag(dag, logical_date=logical_date or datetime.now(UTC), conf=conf)
    emit(
        [
            {
                "task_id": r.task_id,
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


@dags_group.command("backfill")
@click.argument("dag_id")
@click.option("-s", "--start-date", required=True, type=DATETIME)
@click.option("-e", "--end-date", required=True, type=DATETIME)
@click.option(
    "--reset-failed",
    "--reset-dagruns",
    "reset_failed",
    is_flag=True,
    help="Clear existing failed runs in the range so they run again.",
)
@click.option("--no-wait", is_flag=True, help="Create the runs and return.")
@pass_app
def backfill(
    app: App,
    dag_id: str,
    start_date: datetime,
    end_date: datetime,
    reset_failed: bool,
    no_wait: bool,
) -> None:
    """Create the runs of every interval from START to END; the scheduler runs them."""
    if end_date < start_date:
        raise UsageError("--end-date is before --start-date")
    with app.session_factory.begin() as session:
        created, reset = actions.backfill(
            session, dag_id, start=start_date, end=end_date, reset_failed=reset_failed, actor=CLI
        )
    click.echo(
        f"Backfill of '{dag_id}': {len(created)} runs created, {len(reset)} failed runs cleared"
    )
    if no_wait or not (created or reset):
        return
    failed = wait_for_runs(app, dag_id, created + reset)
    if failed:
        raise SystemExit(f"{failed} backfill runs failed")


def wait_for_runs(app: App, dag_id: str, run_ids: list[str], *, poll: float = 1.0) -> int:
    """Show a progress bar until every run finished; returns how many failed."""
    finished_states = ("success", "failed")
    with Progress(*Progress.get_default_columns(), TextColumn("{task.fields[detail]}")) as progress:
        bar = progress.add_task(f"backfill {dag_id}", total=len(run_ids), detail="")
        while True:
            with app.session_factory() as session:
                states = dict(
                    session.execute(
                        select(DagRun.run_id, DagRun.state).where(
                            DagRun.dag_id == dag_id, DagRun.run_id.in_(run_ids)
                        )
                    ).all()
                )
            done = [r for r, s in states.items() if s in finished_states]
            failed = sum(1 for r in done if states[r] == "failed")
            progress.update(bar, completed=len(done), detail=f"{failed} failed")
            if len(done) == len(run_ids):
                return failed
            time.sleep(poll)
