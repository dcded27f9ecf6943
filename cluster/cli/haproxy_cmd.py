"""``tradewind haproxy``: render, check and edit the load balancer's config.

``render`` writes the config for an inventory's masters; ``check`` says what an
existing config lacks (one line per problem, non-zero exit); ``add-server`` and
``remove-server`` edit a config in place and keep the rest. Every config written is
first validated with ``haproxy -c`` when HAProxy is installed; a refused config is
never written.
"""

from __future__ import annotations

from pathlib import Path

import click

from cluster.deploy.haproxy import (
    BACKEND,
    DEFAULT_WEBSERVER_PORT,
    HAProxyOptions,
    Webserver,
    check_name,
    render_config,
    split_endpoint,
    webservers,
)
from cluster.deploy.haproxy_check import check_config
from cluster.deploy.haproxy_edit import add_server, remove_server, write_config
from cluster.deploy.haproxy_parse import parse_config
from cluster.deploy.haproxy_validate import validate_text
from cluster.deploy.topology import load_inventory
from cluster.errors import ConfigError, UsageError

inventory_option = click.option(
    "--inventory",
    "-i",
    "inventory",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The Ansible YAML inventory (its 'master' group are the webservers).",
)
backend_option = click.option(
    "--backend", default=BACKEND, show_default=True, help="The backend of the webservers."
)
port_option = click.option(
    "--webserver-port",
    type=click.IntRange(1, 65535),
    default=DEFAULT_WEBSERVER_PORT,
    show_default=True,
    help="Port of a master's webserver when the inventory does not set tradewind_webserver_port.",
)


@click.group("haproxy")
def haproxy_group() -> None:
    """Render, check and edit the HAProxy config in front of the webservers."""


@haproxy_group.command("render")
@inventory_option
@click.option("--stats-password", help="Password of the stats page (required, or the file).")
@click.option(
    "--stats-password-file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Read the stats password from this file (keeps it out of the process list).",
)
@click.option("--stats-user", default="admin", show_default=True)
@click.option("--bind", default="*:8080", show_default=True, help="Frontend HOST:PORT.")
@click.option("--stats-bind", default="*:1936", show_default=True, help="Stats page HOST:PORT.")
@click.option("--stats-socket", default="/run/haproxy/admin.sock", show_default=True)
@port_option
@click.option(
    "--flower-port",
    type=click.IntRange(1, 65535),
    help="Also serve every master's Flower (tradewind flower) on this port under /flower/.",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the config here (replaced atomically) instead of printing it.",
)
def render_command(
    inventory: Path,
    stats_password: str | None,
    stats_password_file: Path | None,
    stats_user: str,
    bind: str,
    stats_bind: str,
    stats_socket: str,
    webserver_port: int,
    flower_port: int | None,
    output: Path | None,
) -> None:
    """Print (or write) the HAProxy config for the inventory's masters."""
    options = HAProxyOptions(
        stats_password=_stats_password(stats_password, stats_password_file),
        stats_user=stats_user,
        bind=bind,
        stats_bind=stats_bind,
        stats_socket=stats_socket,
        flower_port=flower_port,
    )
    servers = webservers(load_inventory(inventory), default_port=webserver_port)
    text = render_config(servers, options)
    directory = output.parent if output is not None else None
    validated = validate_text(text, directory=directory, label=str(output or "rendered config"))
    if output is None:
        click.echo(text, nl=False)
    else:
        write_config(output, text)
        click.echo(f"Wrote {output} for {len(servers)} webserver(s).")
    _note_validation(validated)


@haproxy_group.command("check")
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@inventory_option
@backend_option
@port_option
@click.pass_context
def check_command(
    ctx: click.Context, config: Path, inventory: Path, backend: str, webserver_port: int
) -> None:
    """Check that CONFIG serves every master of the inventory with a health check.

    Prints one line per problem and exits 1 when there is any.
    """
    expected = webservers(load_inventory(inventory), default_port=webserver_port)
    text = _read(config)
    problems = check_config(parse_config(text, source=str(config)), expected, backend=backend)
    try:
        validated = validate_text(text, directory=config.parent, label=str(config))
    except ConfigError as exc:
        problems.append(str(exc))
        validated = True
    for problem in problems:
        click.echo(f"{config}: {problem}")
    if problems:
        ctx.exit(1)
    click.echo(f"{config}: OK, {len(expected)} webserver(s) checked")
    _note_validation(validated)


@haproxy_group.command("add-server")
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("name")
@click.argument("endpoint", metavar="ADDRESS:PORT")
@backend_option
def add_server_command(config: Path, name: str, endpoint: str, backend: str) -> None:
    """Add server NAME at ADDRESS:PORT (with a health check) to CONFIG, in place."""
    address, port = split_endpoint(endpoint, what="server address")
    if address == "*":
        raise UsageError(f"server address {endpoint!r}: give the webserver's own address")
    server = Webserver(name=check_name(name, what="server name"), address=address, port=port)
    text = add_server(_read(config), server, backend=backend, source=str(config))
    validated = validate_text(text, directory=config.parent, label=str(config))
    write_config(config, text)
    click.echo(f"Added server {name} ({server.endpoint}) to backend {backend} in {config}.")
    _note_validation(validated)


@haproxy_group.command("remove-server")
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("name")
@backend_option
def remove_server_command(config: Path, name: str, backend: str) -> None:
    """Remove server NAME from CONFIG, in place."""
    text = remove_server(_read(config), name, backend=backend, source=str(config))
    validated = validate_text(text, directory=config.parent, label=str(config))
    write_config(config, text)
    click.echo(f"Removed server {name} from backend {backend} in {config}.")
    _note_validation(validated)


def _stats_password(value: str | None, path: Path | None) -> str:
    """The password from the option or the file; exactly one of them is needed."""
    if value is not None and path is not None:
        raise UsageError("give --stats-password or --stats-password-file, not both")
    if path is not None:
        value = _read(path).strip()
    if not value:
        raise UsageError(
            "the stats page needs a password: give --stats-password or --stats-password-file"
        )
    return value


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"{path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} cannot be read: {exc}") from exc


def _note_validation(validated: bool) -> None:
    if not validated:
        click.echo("haproxy is not installed here: not validated with haproxy -c", err=True)
