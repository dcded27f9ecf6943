"""``tradewind db``: create, check, reset and clean the metastore."""

from __future__ import annotations

from datetime import datetime

import click
from sqlalchemy.orm import Session

from cluster.cli.app import App, pass_app
from cluster.cli.output import emit, output_option
from cluster.cli.params import DATETIME, accepted_flags
from cluster.cli.transactions import audit, in_metastore
from cluster.errors import UsageError
from cluster.metastore import migrate as schema
from cluster.metastore.cleanup import TABLES, clean
from cluster.metastore.engine import transaction

#: Airflow's names for the tables Tradewind calls otherwise
AIRFLOW_TABLES = {"log": "audit_log"}


@click.group("db")
def db_group() -> None:
    """Create, check, reset and clean the metastore."""


@db_group.command("migrate")
@pass_app
def migrate_command(app: App) -> None:
    """Create the metastore schema or upgrade it to this version's revision."""
    current, head = schema.current_revision(app.engine), schema.head_revision()
    if current == head:
        click.echo(f"The metastore is already at revision {head}: nothing to do.")
        return
    schema.migrate(app.engine)
    transaction(
        app.session_factory,
        lambda s: audit(s, "cli.db.migrate", from_revision=current, to_revision=head),
    )
    found = "an empty database" if current is None else f"revision {current}"
    click.echo(f"Migrated the metastore from {found} to revision {head}.")


@db_group.command("check")
@pass_app
def check_command(app: App) -> None:
    """Exit 0 when the schema is at this version's revision, else say what to run."""
    schema.check(app.engine)
    click.echo(f"The metastore is at revision {schema.head_revision()}.")


@db_group.command("reset")
@click.option("-y", "--yes", is_flag=True, help="Confirm that every table and row may go.")
@pass_app
def reset_command(app: App, yes: bool) -> None:
    """Drop every table in the metastore's database, then migrate: ALL DATA IS LOST."""
    if not yes:
        raise UsageError(
            "db reset drops every table and all data in the metastore: pass --yes to confirm"
        )
    schema.reset(app.engine)
    transaction(app.session_factory, lambda s: audit(s, "cli.db.reset"))
    click.echo(f"Reset the metastore: empty schema at revision {schema.head_revision()}.")


@db_group.command("clean")
@click.option(
    "--before",
    "--clean-before-timestamp",
    "before",
    type=DATETIME,
    required=True,
    help="Purge history that ended before this ISO date or datetime (UTC if no zone).",
)
@click.option("--dry-run", is_flag=True, help="Only count what would be purged.")
@click.option(
    "-t",
    "--tables",
    help=f"Only these tables, comma-separated: {', '.join(TABLES)} (or Airflow's log).",
)
@output_option
@accepted_flags(("--skip-archive",), ("-y", "--yes"), ("-v", "--verbose"))
@pass_app
def clean_command(
    app: App, before: datetime, dry_run: bool, tables: str | None, output: str
) -> None:
    """Purge finished DAG runs, their task instances, tries and XComs, and old audit rows.

    Airflow's ``--skip-archive`` and ``-y`` are accepted: nothing is archived (purged
    rows are gone) and the command never asks for confirmation.
    """
    chosen = _tables(tables)

    def work(session: Session) -> dict[str, int]:
        counts = clean(session=session, before=before, dry_run=dry_run, tables=chosen)
        if not dry_run:
            audit(session, "cli.db.clean", before=before.isoformat(), rows=counts)
        return counts

    counts = in_metastore(app, work)
    column = "rows_to_purge" if dry_run else "rows_purged"
    rows = [{"table": table, column: n} for table, n in counts.items()]
    emit(rows, output, columns=["table", column])


def _tables(given: str | None) -> list[str] | None:
    """The tables named by ``--tables`` (Airflow's ``log`` is the audit log).

    :raises UsageError: for a name ``db clean`` does not clean.
    """
    if given is None:
        return None
    names = [AIRFLOW_TABLES.get(n.strip(), n.strip()) for n in given.split(",") if n.strip()]
    unknown = sorted(set(names) - set(TABLES))
    if unknown or not names:
        raise UsageError(
            f"--tables: cannot clean {', '.join(unknown) or 'nothing'}; choose from {', '.join(TABLES)}"
        )
    return names
