"""The ``tradewind.toml`` a first run writes: fresh secrets, so that nothing that needs one
starts without it.

``tradewind standalone`` writes it when the home has none; ``tradewind config init``
writes it on request (a node of a cluster copies the keys from it to every other node).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet

CONFIG_FILE = "tradewind.toml"


def initial_config(written_by: str) -> str:
    """The text of a new ``tradewind.toml``: a fresh Fernet key and web secret key."""
    return (
        f"# Written by '{written_by}'. Keep the keys secret and the same on every node.\n"
        "[core]\n"
        f'fernet_key = "{Fernet.generate_key().decode()}"\n\n'
        "[webserver]\n"
        f'secret_key = "{secrets.token_urlsafe(32)}"\n'
    )


def write_initial_config(home: Path, *, written_by: str, overwrite: bool = False) -> Path | None:
    """Create ``home`` and its ``dags`` folder, and write ``tradewind.toml`` there (only
    its owner may read it) unless one exists and ``overwrite`` is false.

    Overwriting replaces the Fernet key: whatever the old key encrypted in the metastore
    can no longer be read.

    :return: the path written, or ``None`` when a file was there and was kept.
    """
    home.mkdir(parents=True, exist_ok=True)
    (home / "dags").mkdir(exist_ok=True)
    path = home / CONFIG_FILE
    if path.exists() and not overwrite:
        return None
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(initial_config(written_by))
    path.chmod(0o600)  # an overwritten file keeps its old mode otherwise
    return path
