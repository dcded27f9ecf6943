"""``tradewind users``: create, list and delete users, and manage their API tokens.

Passwords are prompted for (hidden, twice) unless given with ``--password``, so they
stay out of shell history; an API token is printed once, at creation, and only its
hash is kept.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import timedelta

import click
from sqlalchemy.orm import Session

from cluster.cli.app import App, pass_app
from cluster.cli.output import emit, output_option
from cluster.cli.transactions import audit, in_metastore
from cluster.errors import UsageError
from cluster.metastore.coltypes import utcnow
from cluster.metastore.users import (
    ROLES,
    UserRecord,
    create_api_token,
    create_user,
    delete_user,
    list_api_tokens,
    list_users,
)

USER_COLUMNS = ["id", "username", "email", "role", "active", "created_at", "last_login"]
TOKEN_COLUMNS = ["id", "name", "created_at", "expires_at", "last_used_at"]


def normalize_role(role: str) -> str:
    """The role as stored (``admin`` → ``Admin``).

    :raises UsageError: for a role that is not one of :data:`ROLES`.
    """
    by_lower = {name.lower(): name for name in ROLES}
    try:
        return by_lower[role.strip().lower()]
    except KeyError:
        raise UsageError(f"unknown role '{role}' (choose one of {', '.join(ROLES)})") from None


@click.group("users")
def users_group() -> None:
    """Manage the users of the web UI and the API."""


@users_group.command("create")
@click.option("-u", "--username", required=True)
@click.option(
    "-r",
    "--role",
    required=True,
    callback=lambda _ctx, _param, value: normalize_role(value),
    help=f"One of {', '.join(ROLES)} (any case).",
)
@click.option("-e", "--email")
@click.option(
    "-p",
    "--password",
    prompt=True,
    hide_input=True,
    confirmation_prompt=True,
    help="Prompted for (hidden, twice) when omitted.",
)
@pass_app
def create_command(app: App, username: str, role: str, email: str | None, password: str) -> None:
    """Create a user with a role."""

    def work(session: Session) -> UserRecord:
        user = create_user(username, password, role=role, session=session, email=email)
        audit(session, "cli.users.create", user=username, role=role)
        return user

    user = in_metastore(app, work)
    click.echo(f"User '{user.username}' created with role {user.role}.")


@users_group.command("list")
@output_option
@pass_app
def list_command(app: App, output: str) -> None:
    """List the users (never their password hashes)."""
    users = in_metastore(app, lambda s: list_users(session=s))
    rows = [{c: asdict(u)[c] for c in USER_COLUMNS} for u in users]
    emit(rows, output, columns=USER_COLUMNS)


@users_group.command("delete")
@click.option("-u", "--username", required=True)
@pass_app
def delete_command(app: App, username: str) -> None:
    """Delete a user and their API tokens."""

    def work(session: Session) -> None:
        delete_user(username, session=session)
        audit(session, "cli.users.delete", user=username)

    in_metastore(app, work)
    click.echo(f"User '{username}' deleted.")


@users_group.group("token")
def token_group() -> None:
    """Manage a user's API tokens."""


@token_group.command("create")
@click.option("-u", "--username", required=True)
@click.option("-n", "--name", default="cli", show_default=True, help="What the token is for.")
@click.option(
    "--expires-days",
    type=click.IntRange(min=1),
    help="Days until the token expires; never when omitted.",
)
@pass_app
def token_create_command(app: App, username: str, name: str, expires_days: int | None) -> None:
    """Create an API token and print it: it cannot be shown again."""
    expires_at = None if expires_days is None else utcnow() + timedelta(days=expires_days)

    def work(session: Session) -> tuple[int, str]:
        token_id, token = create_api_token(username, name, session=session, expires_at=expires_at)
        audit(session, "cli.users.token.create", user=username, token_id=token_id, name=name)
        return token_id, token

    token_id, token = in_metastore(app, work)
    click.echo(token)
    click.echo(
        f"API token {token_id} ('{name}') created for '{username}': copy it now, it is "
        "not shown again.",
        err=True,
    )


@token_group.command("list")
@click.option("-u", "--username", required=True)
@output_option
@pass_app
def token_list_command(app: App, username: str, output: str) -> None:
    """List a user's API tokens (not the tokens themselves: only hashes are kept)."""
    tokens = in_metastore(app, lambda s: list_api_tokens(username, session=s))
    emit([asdict(t) for t in tokens], output, columns=TOKEN_COLUMNS)
