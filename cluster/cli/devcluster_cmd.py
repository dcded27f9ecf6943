"""``tradewind dev-cluster``: the whole HA cluster on this machine, on loopback addresses.

``up`` starts MariaDB (or PostgreSQL: ``--metastore postgresql``), a RabbitMQ cluster, a ZooKeeper ensemble, a scheduler, a
webserver and a triggerer per master, a worker per worker node and HAProxy in front, each node on its
own 127.x address with its own ``tradewind.toml``, and returns while they run on.
``status``, ``kill``, ``start``, ``logs`` and ``down`` act on that cluster through the
state file in its directory (default ``$TRADEWIND_HOME/dev-cluster``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from cluster.cli.app import App, pass_app
from cluster.devcluster import state as state_file
from cluster.devcluster.launcher import (
    bring_up,
    kill_services,
    remove_cluster,
    start_services,
    stop_all,
)
from cluster.devcluster.layout import METASTORE_ENGINES, Shape, parse_setting
from cluster.devcluster.services.process import tail
from cluster.devcluster.state import ClusterState
from cluster.devcluster.status import leader, read_members, service_rows
from cluster.errors import UsageError

dir_option = click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    help="The dev cluster's directory [$TRADEWIND_HOME/dev-cluster].",
)


def cluster_dir(app: App, directory: Path | None) -> Path:
    return (directory or app.home / "dev-cluster").expanduser().resolve()


def say(message: str) -> None:
    click.echo(message, err=True)


@click.group("dev-cluster")
def devcluster_group() -> None:
    """Run the whole HA cluster on this machine (loopback addresses) to try it out."""


@devcluster_group.command("up")
@click.option("--masters", default=2, show_default=True, help="Schedulers + webservers.")
@click.option("--workers", default=2, show_default=True, help="Celery workers.")
@click.option("--zookeepers", default=3, show_default=True, help="ZooKeeper nodes.")
@click.option("--rabbitmq", default=3, show_default=True, help="RabbitMQ nodes.")
@click.option(
    "--metastore",
    type=click.Choice(METASTORE_ENGINES),
    default=METASTORE_ENGINES[0],
    show_default=True,
    help="The metastore's database server.",
)
@click.option(
    "--dags",
    type=click.Path(file_okay=False, path_type=Path),
    help="Copy the DAG files of this folder into the cluster's DAG folder.",
)
@click.option(
    "--set",
    "settings",
    multiple=True,
    metavar="SECTION.KEY=VALUE",
    help="A setting of every node's tradewind.toml (repeatable), e.g. core.load_examples=false.",
)
@dir_option
@pass_app
def up_command(
    app: App,
    masters: int,
    workers: int,
    zookeepers: int,
    rabbitmq: int,
    metastore: str,
    dags: Path | None,
    settings: tuple[str, ...],
    directory: Path | None,
) -> None:
    """Start the cluster and print its nodes, services, addresses and URL."""
    overrides: dict[str, dict[str, Any]] = {}
    for text in settings:
        section, key, value = parse_setting(text)
        overrides.setdefault(section, {})[key] = value
    shape = Shape(
        masters=masters,
        workers=workers,
        zookeepers=zookeepers,
        rabbitmq=rabbitmq,
        metastore=metastore,
    )
    root = cluster_dir(app, directory)
    with state_file.locked(root):
        current = bring_up(root, shape, overrides=overrides, dags=dags, say=say)
    print_cluster(current, service_rows(current, read_members(current)))


@devcluster_group.command("status")
@click.option("-o", "--output", type=click.Choice(["table", "json"]), default="table")
@dir_option
@pass_app
def status_command(app: App, output: str, directory: Path | None) -> None:
    """Each service up or down, and the scheduler leader (from 'cluster status')."""
    current = state_file.load(cluster_dir(app, directory))
    members = read_members(current)
    rows = service_rows(current, members)
    if output == "json":
        data = {
            "url": current.url,
            "admin_user": current.admin_user,
            "leader": leader(current, members),
            "members_error": members.error,
            "services": rows,
        }
        click.echo(json.dumps(data, indent=2))
        return
    print_cluster(current, rows)
    if members.error:
        click.echo(f"schedulers' roles unknown: {members.error}")


@devcluster_group.command("kill")
@click.argument("target", metavar="NODE|SERVICE")
@dir_option
@pass_app
def kill_command(app: App, target: str, directory: Path | None) -> None:
    """SIGKILL a service (e.g. master1/scheduler, haproxy) or every service of a node."""
    root = cluster_dir(app, directory)
    with state_file.locked(root):
        current = state_file.load(root)
        kill_services(current.resolve(target), click.echo)


@devcluster_group.command("start")
@click.argument("target", metavar="NODE|SERVICE")
@dir_option
@pass_app
def start_command(app: App, target: str, directory: Path | None) -> None:
    """Start a stopped or killed service (or a node's) again and wait until it is ready."""
    root = cluster_dir(app, directory)
    with state_file.locked(root):
        current = state_file.load(root)
        start_services(current, current.resolve(target), click.echo)


@devcluster_group.command("logs")
@click.argument("service", metavar="SERVICE")
@click.option("-n", "--lines", default=40, show_default=True, type=click.IntRange(min=1))
@dir_option
@pass_app
def logs_command(app: App, service: str, lines: int, directory: Path | None) -> None:
    """Print the end of a service's log (e.g. master1/scheduler, broker2/rabbitmq)."""
    records = state_file.load(cluster_dir(app, directory)).resolve(service)
    if len(records) != 1:
        names = ", ".join(r.name for r in records)
        raise UsageError(f"{service!r} has {len(records)} services: say which one of {names}")
    path = Path(records[0].log)
    if not path.exists():
        path = Path(records[0].output)
    click.echo(f"==> {path} <==")
    click.echo(tail(path, lines))


@devcluster_group.command("down")
@click.option("--keep", is_flag=True, help="Keep the directory (data and logs).")
@dir_option
@pass_app
def down_command(app: App, keep: bool, directory: Path | None) -> None:
    """Stop every service of the dev cluster (by PID) and remove its directory."""
    root = cluster_dir(app, directory)
    with state_file.locked(root):
        current = state_file.load(root)
        stopped = stop_all(current)
        click.echo(f"Stopped {len(stopped)} service(s).")
        if not keep:
            remove_cluster(root)
            click.echo(f"Removed {root}.")


def print_cluster(current: ClusterState, rows: list[dict[str, Any]]) -> None:
    """The table of nodes and services, then where to point a browser and who to be."""
    table = Table(title=f"Tradewind dev cluster in {current.root}")
    for column in ("node", "service", "address", "pid", "state", "detail"):
        table.add_column(column)
    for row in rows:
        endpoint = f"{row['address']}:{row['port']}" if row["port"] else row["address"]
        table.add_row(
            row["node"],
            row["kind"],
            endpoint,
            str(row["pid"] or "-"),
            row["state"],
            row["detail"],
        )
    console = Console(width=120)
    console.print(table)
    console.print(f"URL:   {current.url}  (HAProxy in front of the webservers)")
    console.print(f"Login: {current.admin_user} / {current.admin_password}")
    console.print(f"Operator commands: TRADEWIND_HOME={current.operator_home} tradewind ...")
