"""Fernet secrets: encrypted at rest, readable with any configured key, rotatable."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet, MultiFernet
from sqlalchemy import select
from sqlalchemy.orm import Session

from cluster.errors import SecretError
from cluster.metastore.connections import ConnectionRecord, add_connection, get_connection
from cluster.metastore.models import Connection, Variable
from cluster.metastore.secrets import decrypt, encrypt, make_fernet, rotate_fernet_key
from cluster.metastore.variables import get_variable, set_variable


def test_round_trip_and_ciphertext_is_not_plaintext(fernet: MultiFernet) -> None:
    token = encrypt(fernet, "hunter2 ✓")
    assert "hunter2" not in token
    assert decrypt(fernet, token) == "hunter2 ✓"


def test_missing_key_says_how_to_make_one() -> None:
    with pytest.raises(SecretError, match=r"fernet_key.*Fernet.generate_key"):
        make_fernet("")


def test_malformed_key_is_a_secret_error() -> None:
    with pytest.raises(SecretError, match="not a valid Fernet key"):
        make_fernet("not-a-key")


def test_a_foreign_key_cannot_decrypt(fernet: MultiFernet) -> None:
    token = encrypt(fernet, "x")
    with pytest.raises(SecretError, match="rotate"):
        decrypt(make_fernet(Fernet.generate_key().decode()), token)


def test_stored_values_are_encrypted(session: Session, fernet: MultiFernet) -> None:
    set_variable("api_key", "s3cret-value", session=session, fernet=fernet)
    add_connection(
        ConnectionRecord("db", "postgres", password="pw-plain", extra='{"token": "tok-plain"}'),
        session=session,
        fernet=fernet,
    )
    session.commit()
    raw_val = session.execute(select(Variable.val)).scalar_one()
    raw_pw, raw_extra = session.execute(select(Connection.password, Connection.extra)).one()
    assert raw_val is not None and "s3cret" not in raw_val
    assert raw_pw is not None and "pw-plain" not in raw_pw
    assert raw_extra is not None and "tok-plain" not in raw_extra
    assert get_variable("api_key", session=session, fernet=fernet) == "s3cret-value"


def test_rotation_reencrypts_with_the_first_key(session: Session, fernet: MultiFernet) -> None:
    old_key = Fernet.generate_key().decode()
    new_key = Fernet.generate_key().decode()
    old = make_fernet(old_key)
    set_variable("v", "value", session=session, fernet=old)
    add_connection(
        ConnectionRecord("c", "http", password="pw", extra="{}"), session=session, fernet=old
    )
    session.commit()

    both = make_fernet(f"{new_key},{old_key}")
    assert rotate_fernet_key(session, both) == 3
    session.commit()

    only_new = make_fernet(new_key)
    assert get_variable("v", session=session, fernet=only_new) == "value"
    record = get_connection("c", session=session, fernet=only_new)
    assert (record.password, record.extra) == ("pw", "{}")


def test_rotation_without_the_old_key_fails_loudly(session: Session, fernet: MultiFernet) -> None:
    set_variable("v", "value", session=session, fernet=fernet)
    with pytest.raises(SecretError):
        rotate_fernet_key(session, make_fernet(Fernet.generate_key().decode()))
