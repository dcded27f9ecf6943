"""``tradewind datasets``: the datasets DAGs produce and consume, and their events."""

from __future__ import annotations

from typing import Any

import click
from sqlalchemy.orm import Session

from cluster.cli.app import App, pass_app
from cluster.cli.output import emit, output_option
from cluster.cli.transactions import in_metastore
from cluster.metastore.datasets import list_datasets, read_events


@click.group("datasets")
def datasets_group() -> None:
    """List datasets and their events (data-aware scheduling)."""


@datasets_group.command("list")
@output_option
@pass_app
def list_command(app: App, output: str) -> None:
    """List datasets with their consumers, producers and latest event."""

    def work(session: Session) -> list[dict[str, Any]]:
        rows = list_datasets(session)
        for row in rows:
            row["consumers"] = ",".join(row["consumers"])
            row["producers"] = ",".join(row["producers"])
        return rows

    emit(
        in_metastore(app, work),
        output,
        columns=["uri", "consumers", "producers", "events", "last_event"],
    )


@datasets_group.command("events")
@click.option("--uri", help="Only the events of this dataset.")
@click.option("--limit", type=click.IntRange(1, 10000), default=100, show_default=True)
@output_option
@pass_app
def events_command(app: App, uri: str | None, limit: int, output: str) -> None:
    """List dataset events, oldest first: who emitted them, when, with which extra."""

    def work(session: Session) -> list[dict[str, Any]]:
        return read_events(session, uri=uri, limit=limit)

    emit(
        in_metastore(app, work),
        output,
        columns=["id", "uri", "timestamp", "source_dag_id", "source_task_id", "source_run_id",
                 "extra"],
    )  # fmt: skip
