"""``tradewind pools``: set, get, delete and list pools, with their occupied slots."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from sqlalchemy.orm import Session

from cluster.cli.app import App, pass_app
from cluster.cli.output import emit, output_option
from cluster.cli.params import VERBOSE
from cluster.cli.transactions import audit, in_metastore
from cluster.errors import UsageError
from cluster.metastore.pools import (
    PoolRecord,
    delete_pool,
    get_pool,
    list_pools,
    occupied_slots,
    set_pool,
)

COLUMNS = ["pool", "slots", "description", "occupied_slots"]


def _row(record: PoolRecord, occupied: dict[str, int]) -> dict[str, Any]:
    return {
        "pool": record.pool,
        "slots": record.slots,
        "description": record.description,
        "occupied_slots": occupied.get(record.pool, 0),
    }


@click.group("pools")
def pools_group() -> None:
    """Manage pools: slot budgets that task instances share."""


# a negative SLOTS is an argument to refuse with a reason, not an unknown option "-3"
@pools_group.command("set", context_settings={"ignore_unknown_options": True})
@click.argument("name")
@click.argument("slots", type=int)
@click.argument("description")
@pass_app
def set_command(app: App, name: str, slots: int, description: str) -> None:
    """Create the pool NAME with SLOTS slots, or resize it."""

    def work(session: Session) -> PoolRecord:
        record = set_pool(name, slots, session=session, description=description)
        audit(session, "cli.pools.set", pool=name, slots=slots)
        return record

    record = in_metastore(app, work)
    click.echo(f"Pool '{record.pool}' set to {record.slots} slots.")


@pools_group.command("get")
@click.argument("name")
@output_option
@pass_app
def get_command(app: App, name: str, output: str) -> None:
    """Show the pool NAME and how many of its slots are taken."""

    def work(session: Session) -> dict[str, Any]:
        return _row(get_pool(name, session=session), occupied_slots(session=session))

    emit(in_metastore(app, work), output, columns=COLUMNS)


@pools_group.command("delete")
@click.argument("name")
@pass_app
def delete_command(app: App, name: str) -> None:
    """Delete the pool NAME (default_pool cannot be deleted, only resized)."""

    def work(session: Session) -> None:
        delete_pool(name, session=session)
        audit(session, "cli.pools.delete", pool=name)

    in_metastore(app, work)
    click.echo(f"Pool '{name}' deleted.")


@pools_group.command("list")
@output_option
@pass_app
def list_command(app: App, output: str) -> None:
    """List the pools with their slots and occupied slots (queued and running tasks)."""

    def work(session: Session) -> list[dict[str, Any]]:
        occupied = occupied_slots(session=session)
        return [_row(record, occupied) for record in list_pools(session=session)]

    emit(in_metastore(app, work), output, columns=COLUMNS)


@pools_group.command("import")
@click.argument("file", metavar="FILEPATH", type=click.Path(dir_okay=False, path_type=Path))
@VERBOSE
@pass_app
def import_command(app: App, file: Path) -> None:
    """Create or resize the pools of FILEPATH, Airflow's {name: {slots, description}}."""
    try:
        data = json.loads(file.read_text())
    except OSError as exc:
        raise UsageError(f"cannot read {file}: {exc.strerror}") from exc
    except ValueError as exc:
        raise UsageError(f"Invalid json file: {exc}") from exc
    if not isinstance(data, dict):
        raise UsageError(f"{file} must hold one JSON object {{name: {{slots, description}}}}")
    good = {
        k: v for k, v in data.items() if isinstance(v, dict) and {"slots", "description"} <= set(v)
    }

    def work(session: Session) -> int:
        for name, pool in good.items():
            set_pool(name, int(pool["slots"]), session=session, description=pool["description"])
        audit(session, "cli.pools.import", file=str(file), pools=len(good))
        return len(good)

    count = in_metastore(app, work)
    failed = sorted(set(data) - set(good))
    if failed:
        raise UsageError(f"Failed to update pool(s): {', '.join(failed)}")
    click.echo(f"Uploaded {count} pool(s)")


@pools_group.command("export")
@click.argument("file", metavar="FILEPATH", type=click.Path(dir_okay=False, path_type=Path))
@VERBOSE
@pass_app
def export_command(app: App, file: Path) -> None:
    """Write every pool to FILEPATH as Airflow does: {name: {slots, description, include_deferred}}."""
    records = in_metastore(app, lambda s: list_pools(session=s))
    data = {
        r.pool: {"slots": r.slots, "description": r.description, "include_deferred": False}
        for r in records
    }
    try:
        file.write_text(json.dumps(data, sort_keys=True, indent=4))
    except OSError as exc:
        raise UsageError(f"cannot write {file}: {exc.strerror}") from exc
    click.echo(f"Exported {len(records)} pools to {file}")
