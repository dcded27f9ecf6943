"""A component's heartbeat says once that the metastore is gone, and once that it is back."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from sqlalchemy import select

from cluster.config import MetastoreSettings
from cluster.metastore.engine import create_engine_for, make_session_factory
from cluster.metastore.heartbeats import ComponentHeartbeat
from cluster.metastore.migrate import migrate
from cluster.metastore.models import Component


def test_an_outage_is_one_warning_and_the_recovery_another(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    engine = create_engine_for(MetastoreSettings(url=f"sqlite:///{tmp_path / 'late.db'}"))
    sessions = make_session_factory(engine)  # no schema yet: every beat fails
    heartbeat = ComponentHeartbeat(sessions, kind="worker", host="h", interval=1.0)
    with caplog.at_level(logging.DEBUG, logger="cluster.metastore.heartbeats"):
        assert [heartbeat.beat() for _ in range(3)] == [False, False, False]
        migrate(engine)
        assert heartbeat.beat() and heartbeat.beat()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2, warnings
    assert "heartbeat failed" in warnings[0] and "back" in warnings[1]
    assert sum("heartbeat failed" in r.getMessage() for r in caplog.records) == 3
    with sessions() as session:
        assert session.scalars(select(Component.kind)).all() == ["worker"]
