"""``tradewind rotate-fernet-key``, and the cipher every secret-handling command uses."""

from __future__ import annotations

import click
from cryptography.fernet import MultiFernet
from sqlalchemy.orm import Session

from cluster.cli.app import App, pass_app
from cluster.cli.transactions import audit, in_metastore
from cluster.metastore.secrets import make_fernet, rotate_fernet_key


def fernet_for(app: App) -> MultiFernet:
    """The cipher built from ``core.fernet_key``.

    :raises SecretError: when no key is configured or a key is malformed, saying how
        to generate one.
    """
    return make_fernet(app.settings.core.fernet_key)


@click.command("rotate-fernet-key")
@pass_app
def rotate_fernet_key_command(app: App) -> None:
    """Re-encrypt every stored secret with the first key in core.fernet_key.

    Put the new key first, keep the old ones after it, run this, then drop the old
    keys: dropping them before would leave secrets nobody can decrypt.
    """
    fernet = fernet_for(app)

    def work(session: Session) -> int:
        count = rotate_fernet_key(session, fernet)
        audit(session, "cli.rotate_fernet_key", values=count)
        return count

    count = in_metastore(app, work)
    click.echo(
        f"Re-encrypted {count} values with the first key in core.fernet_key; "
        "the other keys can now be removed."
    )
