"""Fixtures of the triggerer's unit tests: a SQLite metastore with deferred tries."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import MultiFernet

from cluster.config import Settings, TriggererSettings
from cluster.metastore.engine import SessionFactory
from cluster.metastore.models import DagRun, TaskInstance
from cluster.metastore.secrets import make_fernet
from cluster.metastore.transitions import TaskKey
from cluster.metastore.triggers import Deferral, defer_try
from cluster.triggerer.service import TriggererService

T0 = datetime(2025, 1, 1, tzinfo=UTC)
SAMPLES = "tests.unit.triggerer.sample_triggers"

#: ``defer(n, "Sleeper", seconds=0.1)``: defer ``n`` tries on that sample trigger; their keys
Defer = Callable[..., list[TaskKey]]


@pytest.fixture
def metastore_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'metastore.db'}"


@pytest.fixture
def fernet(settings: Settings) -> MultiFernet:
    return make_fernet(settings.core.fernet_key)


@pytest.fixture
def defer(session_factory: SessionFactory, fernet: MultiFernet) -> Defer:
    """Deferred tries of one run, each waiting on its own sample trigger."""
    made = {"runs": 0}

    def add(count: int, trigger: str, **kwargs: Any) -> list[TaskKey]:
        made["runs"] += 1
        run_id = f"r{made['runs']}"
        keys = [TaskKey("d", run_id, f"wait_{n}") for n in range(count)]
        deferral = Deferral(
            classpath=f"{SAMPLES}.{trigger}" if "." not in trigger else trigger,
            trigger_kwargs=kwargs,
            next_method="execute_complete",
            next_kwargs={},
            timeout_at=None,
        )
        with session_factory.begin() as session:
            session.add(
                DagRun(
                    dag_id="d", run_id=run_id, run_type="manual", state="running", logical_date=T0
                )
            )
            for key in keys:
                session.add(
                    TaskInstance(
                        dag_id="d",
                        run_id=run_id,
                        task_id=key.task_id,
                        state="running",
                        try_number=1,
                    )
                )
            session.flush()
            for key in keys:
                assert defer_try(session, key, 1, deferral, fernet=fernet, now=T0) is not None
        return keys

    return add


#: ``make_triggerer(capacity=2)``: a service on the test's metastore, running in a thread
#: (``start=False``: not started; the test drives :meth:`run_pass` itself)
MakeTriggerer = Callable[..., TriggererService]


@pytest.fixture
def make_triggerer(session_factory: SessionFactory, fernet: MultiFernet) -> Iterator[MakeTriggerer]:
    made: list[tuple[TriggererService, threading.Thread | None]] = []

    def make(host: str = "master1", *, start: bool = True, **values: Any) -> TriggererService:
        values.setdefault("poll_interval", 0.05)
        values.setdefault("heartbeat_interval", 0.2)
        values.setdefault("health_timeout", 5.0)
        service = TriggererService(
            TriggererSettings(**values), sessions=session_factory, fernet=fernet, host=host
        )
        thread = None
        if start:
            thread = threading.Thread(target=service.run, daemon=True)
            thread.start()
        made.append((service, thread))
        return service

    yield make
    for service, thread in made:
        service.stop()
        if thread is not None:
            thread.join(10)
        else:
            service.runner.stop(timeout=5)
