"""Components record short fingerprints of the shared secrets, never the secrets."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.orm import Session

from cluster.config import Settings
from cluster.metastore.components import (
    fingerprint,
    heartbeat_component,
    list_components,
    settings_fingerprints,
)

NOW = datetime(2025, 1, 1, tzinfo=UTC)


def test_a_fingerprint_tells_keys_apart_and_reveals_neither() -> None:
    one, other = fingerprint("secret-one"), fingerprint("secret-two")
    assert one != other and len(one) == len(other) == 12
    assert fingerprint("secret-one") == one
    assert "secret" not in one
    assert fingerprint("") == "unset"


def test_heartbeats_keep_the_fingerprints_beside_the_extra(
    session: Session, settings: Settings
) -> None:
    node = settings.replace("webserver", secret_key="k1")
    prints = settings_fingerprints(node)
    assert prints == {
        "secret_key": fingerprint("k1"),
        "fernet_key": fingerprint(node.core.fernet_key),
    }
    extra = {"log_server_url": "http://w1:8793"}
    heartbeat_component(
        "worker", "w1", 7, session=session, now=NOW, extra=extra, fingerprints=prints
    )
    heartbeat_component("worker", "w1", 7, session=session, now=NOW, fingerprints=prints)
    heartbeat_component("webserver", "m1", 8, session=session, now=NOW)
    records = {r.kind: r for r in list_components(session=session)}
    assert records["worker"].fingerprints == prints
    assert records["worker"].extra["log_server_url"] == "http://w1:8793"
    assert records["webserver"].fingerprints == {}
    assert "k1" not in str(records["worker"].extra)
