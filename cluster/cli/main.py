"""``tradewind``: the root click group and the error handling every command shares.

Every error ends the command with one line on stderr saying what is wrong and a
non-zero exit code: click's usage errors, and Tradewind's own errors with their
``exit_code``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click
from sqlalchemy.exc import SQLAlchemyError

from cluster import __version__
from cluster.cli.app import App
from cluster.cli.broker_cmd import broker_group
from cluster.cli.cluster_cmd import cluster_group
from cluster.cli.config_cmd import config_group, version
from cluster.cli.connections_cmd import connections_group
from cluster.cli.dags_cmd import dags_group
from cluster.cli.db_cmd import db_group
from cluster.cli.devcluster_cmd import devcluster_group
from cluster.cli.haproxy_cmd import haproxy_group
from cluster.cli.pools_cmd import pools_group
from cluster.cli.scheduler_cmd import scheduler
from cluster.cli.secrets_cmd import rotate_fernet_key_command
from cluster.cli.standalone_cmd import standalone
from cluster.cli.tasks_cmd import tasks_group
from cluster.cli.users_cmd import users_group
from cluster.cli.variables_cmd import variables_group
from cluster.cli.webserver_cmd import webserver
from cluster.cli.worker_cmd import worker
from cluster.errors import TradewindError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Tradewind: a highly available workflow orchestrator in the shape of Airflow."""
    ctx.ensure_object(App)


cli.add_command(config_group)
cli.add_command(version)
cli.add_command(dags_group)
cli.add_command(tasks_group)
cli.add_command(scheduler)
cli.add_command(standalone)
cli.add_command(db_group)
cli.add_command(variables_group)
cli.add_command(connections_group)
cli.add_command(pools_group)
cli.add_command(users_group)
cli.add_command(rotate_fernet_key_command)
cli.add_command(webserver)
cli.add_command(worker)
cli.add_command(cluster_group)
cli.add_command(broker_group)
cli.add_command(haproxy_group)
cli.add_command(devcluster_group)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the CLI; turn every error into one line and an exit code."""
    try:
        result = cli.main(args=argv, prog_name="tradewind", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("tradewind: aborted", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        ctx = getattr(exc, "ctx", None)
        where = f"{ctx.command_path}: " if ctx is not None else ""
        click.echo(f"tradewind: error: {where}{exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except TradewindError as exc:
        click.echo(f"tradewind: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except SQLAlchemyError as exc:
        cause = getattr(exc, "orig", None) or exc
        click.echo(
            f"tradewind: error: metastore: {str(cause).splitlines()[0]} "
            "(check metastore.url; run 'tradewind db migrate' on a new metastore)",
            err=True,
        )
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    sys.exit(result if isinstance(result, int) else 0)


__all__ = ["__version__", "cli", "main"]
