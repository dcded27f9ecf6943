"""Signed log paths: a webserver signs with the cluster secret, a worker checks."""

from __future__ import annotations

import pytest

from cluster.errors import ConfigError
from cluster.logserver.signing import (
    ExpiredSignature,
    SignatureError,
    sign,
    verify,
)

KEY = "cluster-secret"
PATH = "dag_id=etl/run_id=manual__1/task_id=load/attempt=1.log"
NOW = 1_700_000_000.0


def test_a_signature_is_accepted_until_it_expires() -> None:
    signed = sign(PATH, key=KEY, now=NOW, ttl=30)

    verify(PATH, signed.query(), key=KEY, now=NOW)
    verify(PATH, signed.query(), key=KEY, now=NOW + 30)
    with pytest.raises(ExpiredSignature):
        verify(PATH, signed.query(), key=KEY, now=NOW + 31)


def test_a_signature_is_bound_to_its_path() -> None:
    signed = sign(PATH, key=KEY, now=NOW, ttl=30)

    with pytest.raises(SignatureError, match="does not match"):
        verify(PATH.replace("attempt=1", "attempt=2"), signed.query(), key=KEY, now=NOW)


def test_a_later_expiry_cannot_be_forged() -> None:
    signed = sign(PATH, key=KEY, now=NOW, ttl=30)
    tampered = {**signed.query(), "expires": str(signed.expires + 3600)}

    with pytest.raises(SignatureError, match="does not match"):
        verify(PATH, tampered, key=KEY, now=NOW + 60)


def test_a_tampered_signature_is_refused() -> None:
    signed = sign(PATH, key=KEY, now=NOW, ttl=30)
    flipped = ("0" if signed.signature[0] != "0" else "1") + signed.signature[1:]

    with pytest.raises(SignatureError):
        verify(PATH, {**signed.query(), "signature": flipped}, key=KEY, now=NOW)


def test_another_key_does_not_verify() -> None:
    signed = sign(PATH, key="another-cluster", now=NOW, ttl=30)

    with pytest.raises(SignatureError):
        verify(PATH, signed.query(), key=KEY, now=NOW)


@pytest.mark.parametrize(
    "query",
    [
        {},
        {"expires": str(int(NOW) + 30)},
        {"signature": "ab"},
        {"expires": "soon", "signature": "ab"},
    ],
)
def test_missing_or_malformed_parameters_are_refused(query: dict[str, str]) -> None:
    with pytest.raises(SignatureError):
        verify(PATH, query, key=KEY, now=NOW)


def test_an_empty_secret_is_a_configuration_error() -> None:
    with pytest.raises(ConfigError, match="secret_key"):
        sign(PATH, key="", now=NOW, ttl=30)


def test_the_url_quotes_the_path_and_carries_the_offset() -> None:
    signed = sign(
        "dag_id=a/run_id=manual__2024-01-01T00:00:00+00:00/x.log", key=KEY, now=NOW, ttl=5
    )

    url = signed.url("http://worker1:8793/", offset=120)

    assert url.startswith(
        "http://worker1:8793/log/dag_id%3Da/run_id%3Dmanual__2024-01-01T00%3A00%3A00%2B00%3A00/"
    )
    assert url.endswith(f"expires={signed.expires}&signature={signed.signature}&offset=120")
