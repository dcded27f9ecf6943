"""``tradewind``: the root click group and the error handling every command shares.

Every error ends the command with one line on stderr saying what is wrong and a
non-zero exit code: click's usage errors, and Tradewind's own errors with their
``exit_code``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click

from cluster import __version__
from cluster.cli.lazy import Lazy, LazyGroup
from cluster.errors import TradewindError, metastore_failure

#: every command but ``version``: imported only when it runs (see cluster.cli.lazy)
COMMANDS = {
    "broker": Lazy(
        "cluster.cli.broker_cmd", "broker_group", "Set up and inspect the RabbitMQ broker."
    ),
    "cluster": Lazy(
        "cluster.cli.cluster_cmd",
        "cluster_group",
        "Inspect the whole cluster: its members and its endpoints.",
    ),
    "compat": Lazy(
        "cluster.cli.compat_cmd",
        "compat_group",
        "Check Airflow DAG files against what Tradewind supports.",
    ),
    "config": Lazy(
        "cluster.cli.config_cmd",
        "config_group",
        "Inspect the effective settings, or write a first tradewind.toml.",
    ),
    "connections": Lazy(
        "cluster.cli.connections_files",
        "connections_group",
        "Manage connections (passwords and extras are encrypted at rest).",
    ),
    "dags": Lazy("cluster.cli.dags_cmd", "dags_group", "Manage DAGs."),
    "datasets": Lazy(
        "cluster.cli.datasets_cmd",
        "datasets_group",
        "List datasets and their events (data-aware scheduling).",
    ),
    "db": Lazy("cluster.cli.db_cmd", "db_group", "Create, check, reset and clean the metastore."),
    "dev-cluster": Lazy(
        "cluster.cli.devcluster_cmd",
        "devcluster_group",
        "Run the whole HA cluster on this machine (loopback addresses) to try it out.",
    ),
    "flower": Lazy(
        "cluster.cli.flower_cmd",
        "flower",
        "Run Celery Flower on the cluster's brokers, behind a sign-in, until stopped.",
    ),
    "haproxy": Lazy(
        "cluster.cli.haproxy_cmd",
        "haproxy_group",
        "Render, check and edit the HAProxy config in front of the webservers.",
    ),
    "migrate-from-airflow": Lazy(
        "cluster.cli.migrate_cmd",
        "migrate_from_airflow",
        "Copy an Airflow 2.x metastore (MySQL/MariaDB or PostgreSQL URL, as in airflow.cfg)\n"
        "into Tradewind's: DAG pause states, DAG runs, task instances with their tries and\n"
        "notes, XComs (--include-xcom), variables and connections (re-encrypted with\n"
        "core.fernet_key), pools and users.",
    ),
    "pools": Lazy(
        "cluster.cli.pools_cmd",
        "pools_group",
        "Manage pools: slot budgets that task instances share.",
    ),
    "rotate-fernet-key": Lazy(
        "cluster.cli.secrets_cmd",
        "rotate_fernet_key_command",
        "Re-encrypt every stored secret with the first key in core.fernet_key.",
    ),
    "scheduler": Lazy(
        "cluster.cli.scheduler_cmd",
        "scheduler",
        "Run the scheduler (with DAG processing and the configured executor).",
    ),
    "sla-misses": Lazy(
        "cluster.cli.sla_cmd",
        "sla_group",
        "List the SLA misses of tasks with an sla.",
    ),
    "standalone": Lazy(
        "cluster.cli.standalone_cmd",
        "standalone",
        "Run Tradewind on this machine: SQLite, local executor, scheduler, triggerer, admin user.",
    ),
    "tasks": Lazy("cluster.cli.tasks_cmd", "tasks_group", "Manage task instances."),
    "triggerer": Lazy(
        "cluster.cli.triggerer_cmd",
        "triggerer",
        "Run the triggerer: the triggers of deferred tasks, on asyncio, until stopped.",
    ),
    "users": Lazy(
        "cluster.cli.users_cmd", "users_group", "Manage the users of the web UI and the API."
    ),
    "variables": Lazy(
        "cluster.cli.variables_cmd",
        "variables_group",
        "Manage variables (values are encrypted at rest).",
    ),
    "webserver": Lazy(
        "cluster.cli.webserver_cmd",
        "webserver",
        "Run the web UI and the REST API (gunicorn) until stopped.",
    ),
    "worker": Lazy("cluster.cli.worker_cmd", "worker", "Run a Celery worker with its log server."),
}


@click.group(cls=LazyGroup, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Tradewind: a highly available workflow orchestrator in the shape of Airflow."""


@cli.command()
def version() -> None:
    """Print Tradewind's version."""
    click.echo(__version__)


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
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        if not is_sqlalchemy_error(exc):
            raise
        failure = metastore_failure(getattr(exc, "orig", None) or exc)
        click.echo(f"tradewind: error: {failure}", err=True)
        sys.exit(failure.exit_code)
    sys.exit(result if isinstance(result, int) else 0)


def is_sqlalchemy_error(exc: BaseException) -> bool:
    """Whether ``exc`` is one of SQLAlchemy's errors, asked without importing SQLAlchemy:
    a command that never loaded it (``version``, ``haproxy``) cannot have raised one."""
    errors = sys.modules.get("sqlalchemy.exc")
    return errors is not None and isinstance(exc, errors.SQLAlchemyError)


__all__ = ["__version__", "cli", "main"]
