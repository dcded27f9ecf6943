"""``tradewind standalone``: the whole system on one machine, ready to try.

Creates ``$TRADEWIND_HOME`` with a ``tradewind.toml`` holding fresh secrets (Fernet
key, web secret key) when it is missing, migrates the SQLite metastore, creates an
``admin`` user whose password is printed once and saved beside the config, and runs
the scheduler with the local executor, a triggerer (a child process running ``tradewind
triggerer``: deferred tasks resume) and the webserver (one gunicorn worker, a child
process running ``tradewind webserver``) until Ctrl-C.

Why the triggerer is a child and not a thread of this process: the local executor forks
its workers from this process, and a SQLite connection in the middle of a transaction
on another thread at that moment leaves the forked worker believing the database is
locked (SQLite's locks live in process memory that fork copies): its tries failed with
"database is locked". A process of its own shares nothing across the fork.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import click

from cluster.cli.app import App, pass_app
from cluster.cli.first_run import write_initial_config
from cluster.cli.scheduler_cmd import build_scheduler, configure_logging, stop_on_signals
from cluster.config import Settings
from cluster.errors import NotFoundError
from cluster.metastore import users
from cluster.metastore.migrate import migrate

PASSWORD_FILE = "standalone_admin_password.txt"


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
@click.option("--no-webserver", is_flag=True, help="Run the scheduler only.")
@pass_app
def standalone(app: App, no_examples: bool, no_webserver: bool) -> None:
    """Run Tradewind on this machine: SQLite, local executor, scheduler, triggerer, admin user."""
    home = app.home
    write_initial_config(home, written_by="tradewind standalone")
    settings = app.settings.replace("core", dags_are_paused_at_creation=False)
    if no_examples:
        settings = settings.replace("core", load_examples=False)
    configure_logging(settings)
    migrate(app.engine)
    password = ensure_admin(app, home)
    service = build_scheduler(app, settings)
    triggerer = _start_child("triggerer")
    web = None if no_webserver else _start_child("webserver", "-w", "1")
    _print_welcome(home, settings, password, web is not None)
    stop_on_signals(service)
    try:
        service.run()
    finally:
        for child in (web, triggerer):
            if child is not None:
                _stop(child)
    click.echo("Tradewind standalone stopped.")


def _start_child(*args: str) -> subprocess.Popen[bytes]:
    """``tradewind ARGS`` as a child, with this process's environment."""
    return subprocess.Popen([sys.executable, "-m", "cluster.cli", *args])


def _stop(web: subprocess.Popen[bytes]) -> None:
    if web.poll() is None:
        web.terminate()
    try:
        web.wait(15)
    except subprocess.TimeoutExpired:
        web.kill()
        web.wait(5)


def _print_welcome(home: Path, settings: Settings, password: str | None, web: bool) -> None:
    click.echo("")
    click.echo(f"Tradewind standalone is running (pid {os.getpid()}); Ctrl-C stops it.")
    if web:
        click.echo(f"  web UI:      http://{settings.webserver.host}:{settings.webserver.port}/")
    click.echo(f"  home:        {home}")
    click.echo(f"  DAGs folder: {settings.core.dags_folder}")
    click.echo(f"  logs:        {home / 'logs'}")
    if password:
        click.echo(f"  login:       admin / {password}  (saved to {home / PASSWORD_FILE})")
    else:
        click.echo(f"  login:       admin (password in {home / PASSWORD_FILE})")
    click.echo("  try:         tradewind dags list; tradewind dags trigger tutorial")
    click.echo("")
