"""``tradewind dags show|trigger|pause|unpause|delete|backfill``: what users do to DAGs,
through :mod:`cluster.actions` (the web UI and the API call the same functions)."""

from __future__ import annotations

import json
import re
import time
from datetime import datetime
from typing import Any

import click
from rich.progress import Progress, TextColumn
from sqlalchemy import select

from cluster import actions
from cluster.cli.app import App, os_user, pass_app
from cluster.cli.dags_query_cmd import run_row
from cluster.cli.output import FORMATS, emit, output_option
from cluster.cli.params import DATETIME, JSON_OBJECT, SUBDIR, accepted_flags
from cluster.cli.user_code import with_user_code
from cluster.dagfiles.serialized import SerializedDag
from cluster.errors import UsageError
from cluster.metastore.models import Dag, DagRun

CLI = actions.Actor(os_user() or "cli")


@click.command("show")
@click.argument("dag_id")
@click.option(
    "-o", "--output", type=click.Choice(["json", "dot"]), default="dot", show_default=True
)
@pass_app
@with_user_code
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


@click.command("trigger")
@click.argument("dag_id")
@click.option("-c", "--conf", type=JSON_OBJECT, help="JSON object passed to the run as conf.")
@click.option("-r", "--run-id", help="Run id (default manual__<logical date>).")
@click.option(
    "-l",
    "--logical-date",
    "-e",
    "--exec-date",
    "logical_date",
    type=DATETIME,
    help="ISO date or datetime.",
)
@click.option(
    "--no-replace-microseconds",
    "replace_microseconds",
    is_flag=True,
    flag_value=False,
    default=True,
    help="Keep the logical date's microseconds (zeroed by default, as Airflow does).",
)
@output_option
@SUBDIR
@accepted_flags(("-v", "--verbose"))
@pass_app
@with_user_code
def trigger(
    app: App,
    dag_id: str,
    conf: dict[str, Any] | None,
    run_id: str | None,
    logical_date: datetime | None,
    replace_microseconds: bool,
    output: str,
) -> None:
    """Create a manual run; the scheduler runs it (a paused DAG's run waits)."""
    if logical_date is not None and replace_microseconds:
        logical_date = logical_date.replace(microsecond=0)
    with app.session_factory.begin() as session:
        run = actions.trigger(
            session, dag_id, actor=CLI, conf=conf, run_id=run_id, logical_date=logical_date
        )
        paused = session.scalar(select(Dag.is_paused).where(Dag.dag_id == dag_id))
        row = run_row(run)
    emit([row], output, columns=["dag_id", "run_id", "state", "logical_date", "conf"])
    if paused:
        click.echo(f"note: DAG '{dag_id}' is paused; the run starts once it is unpaused", err=True)


def _pause_command(name: str, paused: bool, doc: str) -> click.Command:
    """``dags pause`` or ``dags unpause``: DAG_ID, or a regular expression with Airflow's
    ``--treat-dag-id-as-regex`` (confirmed unless ``-y``); ``-o`` prints Airflow's rows."""

    @click.command(name, help=doc)
    @click.argument("dag_id")
    @click.option(
        "--treat-dag-id-as-regex", "as_regex", is_flag=True, help="DAG_ID is a regular expression."
    )
    @click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
    @click.option("-o", "--output", type=click.Choice(FORMATS), help="Print the DAGs changed.")
    @SUBDIR
    @accepted_flags(("-v", "--verbose"))
    @pass_app
    @with_user_code
    def command(app: App, dag_id: str, as_regex: bool, yes: bool, output: str | None) -> None:
        with app.session_factory.begin() as session:
            dag_ids = matching_dag_ids(session, dag_id) if as_regex else [dag_id]
            if not dag_ids:
                click.echo(f"No {'un' if not paused else ''}paused DAGs were found")
                return
            if as_regex and not yes:
                listed = "\n".join(dag_ids)
                click.confirm(f"You are about to {name} {len(dag_ids)} DAGs:\n{listed}", abort=True)
            for one in dag_ids:
                actions.set_paused(session, one, paused, actor=CLI)
        if output:
            rows = [{"dag_id": d, "is_paused": paused} for d in dag_ids]
            emit(rows, output, columns=["dag_id", "is_paused"])
        else:
            for one in dag_ids:
                click.echo(f"Dag: {one}, paused: {paused}")

    return command


def matching_dag_ids(session: Any, pattern: str) -> list[str]:
    """The active DAGs whose id the regular expression finds (Airflow's regex options).

    :raises UsageError: for a bad expression.
    """
    try:
        regex = re.compile(pattern)
    except re.error as exc:
        raise UsageError(f"bad DAG id regex {pattern!r}: {exc}") from exc
    ids = session.scalars(select(Dag.dag_id).where(Dag.is_active).order_by(Dag.dag_id))
    return [d for d in ids if regex.search(d)]


pause = _pause_command("pause", True, "Pause a DAG: no new scheduled runs, no new tasks queued.")
unpause = _pause_command("unpause", False, "Unpause a DAG.")


@click.command("delete")
@click.argument("dag_id")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_app
@with_user_code
def delete(app: App, dag_id: str, yes: bool) -> None:
    """Delete every record of a DAG (its file stays)."""
    if not yes:
        click.confirm(f"Delete all records of DAG '{dag_id}'?", abort=True)
    with app.session_factory.begin() as session:
        runs = actions.delete_dag(session, dag_id, actor=CLI)
    click.echo(f"Deleted DAG '{dag_id}' and {runs} runs")


@click.command("backfill")
@click.argument("dag_id")
@click.option("-s", "--start-date", required=True, type=DATETIME)
@click.option("-e", "--end-date", required=True, type=DATETIME)
@click.option(
    "--reset-failed",
    "--reset-dagruns",
    "--rerun-failed-tasks",
    "reset_failed",
    is_flag=True,
    help="Clear existing failed runs in the range so they run again.",
)
@click.option("--no-wait", is_flag=True, help="Create the runs and return.")
@click.option("-c", "--conf", type=JSON_OBJECT, help="JSON object given to each new run as conf.")
@SUBDIR
@accepted_flags(("-y", "--yes"), ("-l", "--local"), ("-x", "--donot-pickle"), ("-v", "--verbose"))
@pass_app
@with_user_code
def backfill(
    app: App,
    dag_id: str,
    start_date: datetime,
    end_date: datetime,
    reset_failed: bool,
    no_wait: bool,
    conf: dict[str, Any] | None,
) -> None:
    """Create the runs of every interval from START to END; the scheduler runs them."""
    if end_date < start_date:
        raise UsageError("--end-date is before --start-date")
    with app.session_factory.begin() as session:
        created, reset = actions.backfill(
            session,
            dag_id,
            start=start_date,
            end=end_date,
            reset_failed=reset_failed,
            actor=CLI,
            conf=conf,
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
