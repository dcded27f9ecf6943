"""Fixtures shared by every test suite: settings, a private MariaDB, migrated metastores.

MariaDB is started once per test run, only if a test asks for it, on a free port
below the ephemeral range; it is stopped by its PID at the end. When it is not
installed the fixture fails (never skips): a green run must mean the MySQL path was
tested. A test that takes ``metastore_url`` runs once on SQLite and once on MariaDB.
"""

from __future__ import annotations

import uuid
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import Engine

from cluster.config import Settings, load_settings
from cluster.devcluster.services.mariadb import MariaDB
from cluster.devcluster.services.ports import free_port
from cluster.devcluster.services.process import ServiceError
from cluster.metastore.engine import SessionFactory, create_engine_for, make_session_factory
from cluster.metastore.migrate import migrate


@pytest.fixture
def tradewind_home(tmp_path: Path) -> Path:
    home = tmp_path / "tradewind"
    home.mkdir()
    return home


@pytest.fixture
def settings(tradewind_home: Path) -> Settings:
    """Settings from defaults only (no environment), a SQLite metastore and a Fernet key."""
    return load_settings(
        env={},
        home=tradewind_home,
        overrides={
            "core": {"fernet_key": Fernet.generate_key().decode()},
            "metastore": {"url": f"sqlite:///{tradewind_home / 'tradewind.db'}"},
        },
    )


_MARIADB = pytest.StashKey[MariaDB]()


@pytest.fixture(scope="session")
def mariadb(
    tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
) -> Iterator[MariaDB]:
    """One private MariaDB server for the whole run, stopped by its PID at the end."""
    try:
        server = MariaDB(tmp_path_factory.mktemp("mariadb"), port=free_port(), fsync=False)
    except ServiceError as exc:
        pytest.fail(f"MariaDB is needed by this test and is not installed: {exc}")
    server.start()
    pytestconfig.stash[_MARIADB] = server
    yield server
    server.stop()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Attach the MariaDB error log to the report of a failed test that used it."""
    report = yield
    server = item.config.stash.get(_MARIADB, None)
    used = "mariadb" in item.nodeid or "mariadb" in getattr(item, "fixturenames", ())
    if report.failed and server is not None and used:
        report.sections.append(("MariaDB error log", server.log_tail()))
    return report


@pytest.fixture
def mariadb_url(mariadb: MariaDB) -> Iterator[str]:
    """A fresh, empty database on the shared server, dropped after the test."""
    name = f"tw_{uuid.uuid4().hex[:12]}"
    url = mariadb.create_database(name)
    yield url
    if mariadb.alive():
        mariadb.drop_database(name)


@pytest.fixture(params=["sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb)])
def metastore_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty metastore; the test runs once per database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'metastore.db'}"
    url: str = request.getfixturevalue("mariadb_url")
    return url


@pytest.fixture
def metastore_engine(settings: Settings, metastore_url: str) -> Iterator[Engine]:
    """A migrated metastore at ``metastore_url``."""
    engine = create_engine_for(settings.replace("metastore", url=metastore_url).metastore)
    migrate(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def session_factory(metastore_engine: Engine) -> SessionFactory:
    return make_session_factory(metastore_engine)
