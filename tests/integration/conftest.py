"""Fixtures of the scheduler integration tests: settings on the test's metastore, an
in-process scheduler on a fake clock, and the environment of ``tradewind`` subprocesses.
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from cluster.config import Settings
from tests.clocks import FakeClock
from tests.integration.scheduler_harness import (
    EXAMPLES,
    InProcessScheduler,
    SchedulerProcess,
    StartScheduler,
    cli_env,
)


@pytest.fixture
def metastore_settings(settings: Settings, metastore_url: str) -> Settings:
    """The test settings on the parametrized metastore (SQLite or MariaDB)."""
    return settings.replace("metastore", url=metastore_url).replace(
        "scheduler", heartbeat_interval=0.5
    )


@pytest.fixture
def fake_clock() -> FakeClock:
    """Starts at the real time: user code may read the wall clock (the pool's tries and
    their sensors' timeouts and reschedules read this clock)."""
    return FakeClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
def dags_folder(tradewind_home: Path) -> Path:
    folder = tradewind_home / "dags"
    folder.mkdir()
    return folder


@pytest.fixture
def inprocess_examples(
    metastore_settings: Settings, session_factory: sessionmaker[Session], fake_clock: FakeClock
) -> Iterator[InProcessScheduler]:
    harness = InProcessScheduler(
        metastore_settings, session_factory, folders=[EXAMPLES], clock=fake_clock
    )
    yield harness
    harness.close()


@pytest.fixture
def inprocess(
    metastore_settings: Settings,
    session_factory: sessionmaker[Session],
    fake_clock: FakeClock,
    dags_folder: Path,
) -> Iterator[InProcessScheduler]:
    harness = InProcessScheduler(
        metastore_settings, session_factory, folders=[dags_folder], clock=fake_clock
    )
    yield harness
    harness.close()


@pytest.fixture
def run_id() -> Iterator[str]:
    """A unique run id; marker files the example tasks keep under /tmp are removed after."""
    value = f"manual__{uuid.uuid4().hex}"
    yield value
    for leftover in Path(tempfile.gettempdir()).glob(f"tradewind_example_*{value}*"):
        leftover.unlink()


@pytest.fixture
def scheduler_env(
    tradewind_home: Path, metastore_settings: Settings, session_factory: sessionmaker[Session]
) -> dict[str, str]:
    """The environment of ``tradewind`` subprocesses on the migrated test metastore."""
    return cli_env(
        tradewind_home, metastore_settings.metastore.url, metastore_settings.core.fernet_key
    )


@pytest.fixture
def start_scheduler(
    scheduler_env: dict[str, str], tradewind_home: Path
) -> Iterator[StartScheduler]:
    """Start ``tradewind scheduler`` subprocesses (``SECTION__KEY=value`` settings as keyword
    arguments); each is stopped at teardown with every process it started, by PID."""
    started: list[SchedulerProcess] = []

    def start(**settings: object) -> SchedulerProcess:
        env = dict(scheduler_env)
        env.update({f"TRADEWIND__{k}": str(v) for k, v in settings.items()})
        log = tradewind_home / f"scheduler-{len(started)}.log"
        scheduler = SchedulerProcess(env, log).start()
        started.append(scheduler)
        return scheduler

    yield start
    for scheduler in reversed(started):
        scheduler.stop()
