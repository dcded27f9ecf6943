"""Fernet encryption of variable values and connection passwords and extras.

``core.fernet_key`` holds one key, or several separated by commas to rotate: the first
encrypts, all decrypt. To rotate, put a new key first, run :func:`rotate_fernet_key`
(``tradewind rotate-fernet-key``), then drop the old key.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import select
from sqlalchemy.orm import Session

from cluster.config import HOW_TO_SET as HOW_TO_SET_SECRETS
from cluster.errors import SecretError
from cluster.metastore.models import Connection, Variable

HOW_TO_SET = HOW_TO_SET_SECRETS["core.fernet_key"]


def make_fernet(fernet_key: str) -> MultiFernet:
    """Build the cipher from ``core.fernet_key`` (comma-separated keys allowed).

    :raises SecretError: when no key is set or a key is malformed, saying how to fix it.
    """
    keys = [part.strip() for part in fernet_key.split(",") if part.strip()]
    if not keys:
        raise SecretError(f"no Fernet key is configured: {HOW_TO_SET}")
    try:
        return MultiFernet([Fernet(key.encode()) for key in keys])
    except (ValueError, TypeError) as exc:
        raise SecretError(f"core.fernet_key is not a valid Fernet key: {HOW_TO_SET}") from exc


def encrypt(fernet: MultiFernet, plaintext: str) -> str:
    """Encrypt with the first key; the token is ASCII text safe for any column."""
    return fernet.encrypt(plaintext.encode("utf-8")).decode("ascii")


def decrypt(fernet: MultiFernet, token: str) -> str:
    """Decrypt with whichever configured key encrypted ``token``.

    :raises SecretError: when no configured key matches (key lost or rotated away).
    """
    try:
        return fernet.decrypt(token.encode("ascii")).decode("utf-8")
    except (InvalidToken, UnicodeError) as exc:
        raise SecretError(
            "cannot decrypt a stored secret with any key in core.fernet_key: was the key "
            "changed without rotating? Put the old key after the new one and run "
            "'tradewind rotate-fernet-key'"
        ) from exc


def rotate_fernet_key(session: Session, fernet: MultiFernet) -> int:
    """Re-encrypt every variable value and connection password and extra with the first key.

    Runs in the caller's transaction: commit it, and only then remove old keys.

    :return: how many values were re-encrypted.
    :raises SecretError: when a value cannot be decrypted by any configured key.
    """
    count = 0
    for variable in session.scalars(select(Variable).where(Variable.is_encrypted)):
        if variable.val is not None:
            variable.val = _rotate(fernet, variable.val)
            count += 1
    for connection in session.scalars(select(Connection)):
        if connection.password is not None:
            connection.password = _rotate(fernet, connection.password)
            count += 1
        if connection.extra is not None:
            connection.extra = _rotate(fernet, connection.extra)
            count += 1
    session.flush()
    return count


def _rotate(fernet: MultiFernet, token: str) -> str:
    try:
        return fernet.rotate(token.encode("ascii")).decode("ascii")
    except InvalidToken as exc:
        raise SecretError(
            "cannot decrypt a stored secret with any key in core.fernet_key: add the key "
            "that encrypted it after the new one, then rotate again"
        ) from exc
