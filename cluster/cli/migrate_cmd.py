"""``tradewind migrate-from-airflow``: bring an Airflow 2.x metastore's history and settings over.

The copying is :mod:`cluster.airflow_migration`; this module reads the options, shows
the progress bar and prints what was found, added and kept.
"""

from __future__ import annotations

import time

import click
from rich.console import Console
from rich.progress import Progress, TaskID

from cluster.airflow_migration.report import Report
from cluster.airflow_migration.run import Options, migrate
from cluster.airflow_migration.source import open_airflow
from cluster.cli.app import App, pass_app
from cluster.cli.output import emit, output_option
from cluster.cli.secrets_cmd import fernet_for
from cluster.cli.transactions import audit, in_metastore
from cluster.errors import SecretError, UsageError
from cluster.metastore import migrate as schema
from cluster.metastore.secrets import make_fernet

COLUMNS = ["table", "airflow", "added", "present", "skipped"]


@click.command("migrate-from-airflow")
@click.argument("source_url")
@click.option(
    "--fernet-key",
    required=True,
    envvar="AIRFLOW__CORE__FERNET_KEY",
    help="Airflow's core.fernet_key (comma-separated keys if Airflow rotated them); "
    "default: $AIRFLOW__CORE__FERNET_KEY.",
)
@click.option("--dry-run", is_flag=True, help="Count what would be copied; write nothing.")
@click.option("--include-xcom", is_flag=True, help="Copy XComs too (JSON values only).")
@output_option
@pass_app
def migrate_from_airflow(
    app: App, source_url: str, fernet_key: str, dry_run: bool, include_xcom: bool, output: str
) -> None:
    """Copy an Airflow 2.x metastore (MySQL/MariaDB or PostgreSQL URL, as in airflow.cfg)
    into Tradewind's: DAG pause states, DAG runs, task instances with their tries and
    notes, XComs (--include-xcom), variables and connections (re-encrypted with
    core.fernet_key), pools and users.

    Rows Tradewind has already are kept, so running it again adds nothing. Stop
    Airflow's scheduler first, and start Tradewind's after: each DAG goes on at the
    interval after the last run Airflow made."""
    try:
        airflow_fernet = make_fernet(fernet_key)
    except SecretError as exc:
        raise UsageError("--fernet-key is not a valid Fernet key") from exc
    options = Options(airflow_fernet, fernet_for(app), include_xcom, dry_run)
    schema.check(app.engine)
    started = time.monotonic()
    with open_airflow(source_url) as source, _ProgressBar(output) as progress:
        report = migrate(source, app.session_factory, options, progress.tick)
    elapsed = time.monotonic() - started
    if not dry_run:
        added = {t: c.added for t, c in report.counts.items() if c.added}
        in_metastore(app, lambda s: audit(s, "cli.migrate_from_airflow", added=added))
    emit(report.rows(), output, columns=COLUMNS)
    if output == "table":
        _say(report, dry_run=dry_run, elapsed=elapsed)


def _say(report: Report, *, dry_run: bool, elapsed: float) -> None:
    for note in report.notes:
        click.echo(f"note: {note}")
    if report.reinvite:
        click.echo(
            "Users to invite again with 'tradewind users create' (no password hash: LDAP, "
            "OAuth): " + ", ".join(sorted(report.reinvite))
        )
    verb = "Would copy" if dry_run else "Copied"
    added = sum(c.added for c in report.counts.values())
    click.echo(f"{verb} {added} rows in {elapsed:.1f} s.")


class _ProgressBar:
    """A rich progress bar on stderr, one line per step; silent for -o json|yaml."""

    def __init__(self, output: str) -> None:
        self.progress = Progress(
            console=Console(stderr=True), disable=output != "table", transient=False
        )
        self.bars: dict[str, TaskID] = {}

    def __enter__(self) -> _ProgressBar:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def tick(self, step: str, done: int, total: int) -> None:
        if step not in self.bars:
            self.bars[step] = self.progress.add_task(step, total=total)
        self.progress.update(self.bars[step], completed=done, total=total)
