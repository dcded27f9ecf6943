"""Fixtures shared by every test suite: settings, a private MariaDB and PostgreSQL,
migrated metastores.

MariaDB and PostgreSQL are each started once per test run, only if a test asks for
them, on a free port below the ephemeral range; each is stopped by its PID at the end.
When one is not installed its fixture fails (never skips): a green run must mean the
MySQL and PostgreSQL paths were tested. A test that takes ``metastore_url`` runs once on
SQLite, once on MariaDB and once on PostgreSQL.
"""

from __future__ import annotations

import uuid
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import Engine
from xdist.remote import Producer
from xdist.scheduler import LoadFileScheduling

from cluster.config import Settings, load_settings
from cluster.devcluster.services.mariadb import MariaDB
from cluster.devcluster.services.postgres import PostgreSQL
from cluster.devcluster.services.process import ServiceError
from cluster.metastore.engine import SessionFactory, create_engine_for, make_session_factory
from cluster.metastore.migrate import migrate
from tests.databases import SERVER_KINDS, DatabaseServer, private_server


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


#: the modules that each start a whole cluster (a dozen services on loopback, or four
#: systemd nodes provisioned by Ansible)
WHOLE_CLUSTER_MODULES = frozenset(
    {"tests/cluster/test_ansible_deploy.py", "tests/cluster/test_dev_cluster_acceptance.py"}
)

_MARIADB = pytest.StashKey[MariaDB]()
_POSTGRES = pytest.StashKey[PostgreSQL]()


@pytest.fixture(scope="session")
def mariadb(
    tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
) -> Iterator[MariaDB]:
    """One private MariaDB server for the whole run, stopped by its PID at the end."""
    try:
        server = private_server("mariadb", tmp_path_factory.mktemp("mariadb"))
    except ServiceError as exc:
        pytest.fail(f"MariaDB is needed by this test and is not installed: {exc}")
    server.start()
    pytestconfig.stash[_MARIADB] = server
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres(
    tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
) -> Iterator[PostgreSQL]:
    """One private PostgreSQL server for the whole run, stopped by its PID at the end."""
    try:
        server = private_server("postgres", tmp_path_factory.mktemp("postgres"))
    except ServiceError as exc:
        pytest.fail(f"PostgreSQL is needed by this test and is not installed: {exc}")
    server.start()
    pytestconfig.stash[_POSTGRES] = server
    yield server
    server.destroy()


class ModuleScheduling(LoadFileScheduling):
    """xdist's ``--dist loadfile`` (a module's tests run on one process, so a module-scoped
    deployment such as a Celery cluster or a webserver is started once), except that the
    modules that each run a whole cluster are one unit: they run one after the other,
    never both at once on the two cores."""

    def _split_scope(self, nodeid: str) -> str:
        module = super()._split_scope(nodeid)
        return "whole clusters" if module in WHOLE_CLUSTER_MODULES else module


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Producer) -> ModuleScheduling | None:
    """``make test``'s ``--dist loadfile`` schedules by :class:`ModuleScheduling`. (xdist's
    ``--dist loadgroup`` would do it with marks, but it does not group under pytest 9.)"""
    if config.getvalue("dist") != "loadfile":
        return None
    return ModuleScheduling(config, log)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Attach the database server's log to the report of a failed test that used it."""
    report = yield
    if report.failed:
        fixtures = getattr(item, "fixturenames", ())
        for key, name, title in (
            (_MARIADB, "mariadb", "MariaDB error log"),
            (_POSTGRES, "postgres", "PostgreSQL log"),
        ):
            server = item.config.stash.get(key, None)
            if server is not None and (name in item.nodeid or name in fixtures):
                report.sections.append((title, server.log_tail()))
    return report


@pytest.fixture
def mariadb_url(mariadb: MariaDB) -> Iterator[str]:
    """A fresh, empty database on the shared server, dropped after the test."""
    name = f"tw_{uuid.uuid4().hex[:12]}"
    url = mariadb.create_database(name)
    yield url
    if mariadb.alive():
        mariadb.drop_database(name)


@pytest.fixture(params=SERVER_KINDS)
def database_server(request: pytest.FixtureRequest) -> DatabaseServer:
    """The run's shared MariaDB, then its PostgreSQL: the test runs once on each."""
    server: DatabaseServer = request.getfixturevalue(request.param)
    return server


@pytest.fixture
def postgres_url(postgres: PostgreSQL) -> Iterator[str]:
    """A fresh, empty database on the shared server, dropped after the test."""
    name = f"tw_{uuid.uuid4().hex[:12]}"
    url = postgres.create_database(name)
    yield url
    if postgres.alive():
        postgres.drop_database(name)


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("mariadb", marks=pytest.mark.mariadb),
        pytest.param("postgres", marks=pytest.mark.postgres),
    ]
)
def metastore_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty metastore; the test runs once per database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'metastore.db'}"
    url: str = request.getfixturevalue(f"{request.param}_url")
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
