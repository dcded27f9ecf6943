"""``tradewind pools``: set, get, delete and list pools, with their occupied slots."""

from __future__ import annotations

from typing import Any

import click
from sqlalchemy.orm import Session

from cluster.cli.app import App, pass_app
from cluster.cli.output import emit, output_option
from cluster.cli.transactions import audit, in_metastore
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
