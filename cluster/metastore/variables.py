"""Variables: key/value settings that DAGs read, Fernet-encrypted at rest."""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.fernet import MultiFernet
from sqlalchemy import select
from sqlalchemy.orm import Session

from cluster.errors import NotFoundError
from cluster.metastore.models import Variable
from cluster.metastore.secrets import decrypt, encrypt


@dataclass(frozen=True, slots=True)
class VariableInfo:
    """What listings show: never the value (it may be a secret)."""

    key: str
    description: str | None
    is_encrypted: bool


def get_variable(key: str, *, session: Session, fernet: MultiFernet) -> str:
    """The decrypted value of ``key``.

    :raises NotFoundError: when no such variable exists.
    :raises SecretError: when the configured keys cannot decrypt it.
    """
    row = session.get(Variable, key)
    if row is None:
        raise NotFoundError(f"variable '{key}' does not exist (tradewind variables set)")
    if row.val is None:
        return ""
    return decrypt(fernet, row.val) if row.is_encrypted else row.val


def set_variable(
    key: str,
    value: str,
    *,
    session: Session,
    fernet: MultiFernet,
    description: str | None = None,
) -> None:
    """Create or replace ``key``; the value is encrypted with the first Fernet key."""
    row = session.get(Variable, key)
    if row is None:
        row = Variable(key=key)
        session.add(row)
    row.val = encrypt(fernet, value)
    row.is_encrypted = True
    if description is not None:
        row.description = description
    session.flush()


def delete_variable(key: str, *, session: Session) -> None:
    """:raises NotFoundError: when no such variable exists."""
    row = session.get(Variable, key)
    if row is None:
        raise NotFoundError(f"variable '{key}' does not exist")
    session.delete(row)
    session.flush()


def list_variables(*, session: Session) -> list[VariableInfo]:
    """Every variable's key and description, sorted by key."""
    rows = session.scalars(select(Variable).order_by(Variable.key))
    return [VariableInfo(r.key, r.description, r.is_encrypted) for r in rows]
