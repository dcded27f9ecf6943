"""``tradewind cluster``: operator views of the whole cluster (status, doctor)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import click

from cluster.cli.app import App, in_metastore, pass_app
from cluster.deploy.members import cluster_members, read_election


@click.group("cluster")
def cluster_group() -> None:
    """Inspect the whole cluster: its members and its endpoints."""


@cluster_group.command("status")
@click.option(
    "-o",
    "--output",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="Output format.",
)
@pass_app
def status(app: App, output: str) -> None:
    """Every scheduler (leader or standby), webserver and worker, and the election."""
    election = read_election(app.settings)
    members = in_metastore(
        app,
        lambda session: cluster_members(
            session, app.settings, now=datetime.now(UTC), election=election
        ),
    )
    if output == "json":
        click.echo(json.dumps(members, indent=2, default=str))
        return
    for line in format_members(members):
        click.echo(line)


def format_members(members: dict[str, Any]) -> list[str]:
    """A short text picture: one line per process, then the election."""
    lines = []
    for s in members["schedulers"]:
        lines.append(
            f"scheduler  {s['host']}:{s['pid']:<8} {s['role']:<8} epoch {s['epoch']}"
            f"  last heartbeat {s['last_heartbeat']}"
        )
    for kind in ("webservers", "workers"):
        for m in members[kind]:
            lines.append(
                f"{kind[:-1]:<10} {m['host']}:{m['pid']:<8} {m['state']:<8}"
                f"  last heartbeat {m['last_heartbeat']}"
            )
    election = members["election"]
    if election["kind"] == "zookeeper":
        seen = (
            f"held by {election['holder']}, {len(election['contenders'])} contenders"
            if election["reachable"]
            else f"ZooKeeper unreachable: {election['error']}"
        )
        lines.append(f"election   zookeeper {','.join(election['hosts'])}: {seen}")
    else:
        lines.append("election   none (a single scheduler)")
    return lines
