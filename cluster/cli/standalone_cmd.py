"""``tradewind standalone``: the whole system on one machine, ready to try.

Creates ``$TRADEWIND_HOME`` with a ``tradewind.toml`` holding fresh secrets (Fernet
key, web secret key) when it is missing, migrates the SQLite metastore, creates an
``admin`` user whose password is printed once and saved beside the config, and runs
the scheduler with the local executor until Ctrl-C.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import click
from cryptography.fernet import Fernet

from cluster.cli.app import App, pass_app
from cluster.cli.scheduler_cmd import build_scheduler, configure_logging, stop_on_signals
from cluster.errors import NotFoundError
from cluster.metastore import users
from cluster.metastore.migrate import migrate

PASSWORD_FILE = "standalone_admin_password.txt"


def write_initial_config(home: Path) -> bool:
    """Write ``tradewind.toml`` with generated secrets unless it exists; returns whether written."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "dags").mkdir(exist_ok=True)
    path = home / "tradewind.toml"
    if path.exists():
        return False
    path.write_text(
        "# Written by 'tradewind standalone'. Keep the keys secret and the same on every node.\n"
        "[core]\n"
        f'fernet_key = "{Fernet.generate_key().decode()}"\n\n'
        "[webserver]\n"
        f'secret_key = "{secrets.token_urlsafe(32)}"\n'
    )
    path.chmod(0o600)
    return True


def ensure_admin(app: App, home: Path) -> str | None:
    """Create the ``admin`` user once; returns its new password, or ``None`` if it existed."""
    with app.session_factory.begin() as session:
        try:
            users.get_user("admin", session=session)
            return None
        except NotFoundError:
            password = secrets.token_urlsafe(12)
            users.create_user("admin", password, role="Admin", session=session)
    target = home / PASSWORD_FILE
    target.write_text(password + "\n")
    target.chmod(0o600)
    return password


@click.command("standalone")
@click.option("--no-examples", is_flag=True, help="Do not load the example DAGs.")
@pass_app
def standalone(app: App, no_examples: bool) -> None:
    """Run Tradewind on this machine: SQLite, local executor, scheduler, admin user."""
    home = app.home
    write_initial_config(home)
    settings = app.settings.replace("core", dags_are_paused_at_creation=False)
    if no_examples:
        settings = settings.replace("core", load_examples=False)
    configure_logging(settings)
    migrate(app.engine)
    password = ensure_admin(app, home)
    service = build_scheduler(app, settings)
    _print_welcome(home, settings.core.dags_folder, password)
    stop_on_signals(service)
    service.run()
    click.echo("Tradewind standalone stopped.")


def _print_welcome(home: Path, dags_folder: Path, password: str | None) -> None:
    click.echo("")
    click.echo(f"Tradewind standalone is running (pid {os.getpid()}); Ctrl-C stops it.")
    click.echo(f"  home:        {home}")
    click.echo(f"  DAGs folder: {dags_folder}")
    click.echo(f"  logs:        {home / 'logs'}")
    if password:
        click.echo(f"  login:       admin / {password}  (saved to {home / PASSWORD_FILE})")
    else:
        click.echo(f"  login:       admin (password in {home / PASSWORD_FILE})")
    click.echo("  try:         tradewind dags list; tradewind dags trigger tutorial")
    click.echo("")
