"""``tradewind cluster``: operator views of the whole cluster (status, doctor)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import click

from cluster.cli.app import App, pass_app
from cluster.cli.transactions import in_metastore
from cluster.deploy.doctor import Check, Environment, run_checks
from cluster.deploy.members import cluster_members, read_election
from cluster.deploy.rabbitmq import quiet_pika

F = TypeVar("F", bound=Callable[..., Any])


def format_option(plain: str) -> Callable[[F], F]:
    """``-o/--output`` with ``plain`` (the default, for people) or ``json`` (for scripts)."""
    return click.option(
        "-o",
        "--output",
        type=click.Choice([plain, "json"]),
        default=plain,
        show_default=True,
        help="Output format.",
    )


@click.group("cluster")
def cluster_group() -> None:
    """Inspect the whole cluster: its members and its endpoints."""


@cluster_group.command("doctor")
@format_option("text")
@pass_app
def doctor(app: App, output: str) -> None:
    """Check every configured endpoint, one line each; exit 1 if any check failed."""
    quiet_pika()
    environment = Environment(
        settings=app.settings,
        engine=app.engine,
        sessions=app.session_factory,
        now=lambda: datetime.now(UTC),
    )
    checks = run_checks(environment)
    if output == "json":
        click.echo(json.dumps([c.to_dict() for c in checks], indent=2))
    else:
        for check in checks:
            click.echo(format_check(check))
    if any(c.failed for c in checks):
        raise click.exceptions.Exit(1)


_MARKS = {"ok": "ok  ", "fail": "FAIL", "skip": "skip"}


def format_check(check: Check) -> str:
    """One line: ``ok   broker amqp://host:5672/vh: AMQP connected``; a failure ends with
    ``-- hint: what to look at``."""
    line = f"{_MARKS[check.status]} {check.name} {check.target}: {check.detail}".rstrip(": ")
    if check.hint and check.failed:
        line += f" -- hint: {check.hint}"
    return line


@cluster_group.command("status")
@format_option("table")
@pass_app
def status(app: App, output: str) -> None:
    """Every scheduler (leader or standby), webserver, worker and triggerer, and the election."""
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
    for m in members["triggerers"]:
        detail = m["detail"] if isinstance(m["detail"], dict) else {}
        load = f"{detail.get('triggers', '?')}/{detail.get('capacity', '?')} triggers"
        lines.append(
            f"triggerer  {m['host']}:{m['pid']:<8} {m['state']:<8} {load}"
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
