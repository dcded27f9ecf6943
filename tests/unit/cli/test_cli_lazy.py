"""Each command imports only what it needs (the lazy groups of ``cluster.cli.lazy``).

Like ``cluster.sdk``'s light-import test: a subprocess runs the real entry point (the
``tradewind`` script too) and reports what it imported (``-X importtime``).
``tradewind version`` must load no database, web, broker or ZooKeeper library;
the commands scripts poll (``dags list``, ``dags state``, ``tasks state``, ``tasks
states-for-dag-run``) read through the database driver alone: no SQLAlchemy, no models,
no web app, scheduler or Alembic, and no output format they were not asked for. The tables' help texts must say what the commands' own help says, so
``tradewind --help`` (which imports no command) lists them unchanged.
"""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

import click
import pytest

from cluster.cli.dags_cmd import dags_group
from cluster.cli.lazy import LazyGroup
from cluster.cli.main import cli
from cluster.cli.tasks_cmd import tasks_group

REPO = Path(__file__).resolve().parents[3]
#: what a command that never touches them must not load (top-level package names)
SERVER_SIDE = ("sqlalchemy", "alembic", "flask", "werkzeug", "celery", "kombu", "kazoo", "pymysql")
#: the environment of every subprocess: the developer's own settings never leak in
CLEAN_ENV = {k: v for k, v in os.environ.items() if not k.startswith("TRADEWIND")}
MODULE = [sys.executable, "-m", "cluster.cli"]
SCRIPT = [str(Path(sys.executable).with_name("tradewind"))]
GROUPS = {"tradewind": cli, "dags": dags_group, "tasks": tasks_group}


def run_and_list_modules(
    args: list[str],
    env: dict[str, str] | None = None,
    *,
    entry: list[str] = MODULE,
    terminal: bool = False,
) -> tuple[int, set[str]]:
    """Run ``ENTRY ARGS`` (``python -m cluster.cli`` or the ``tradewind`` script): its exit
    code and every module it imported, as ``-X importtime`` reports them on stderr.
    ``terminal``: its standard output is a pseudo-terminal (keep that output short: it
    is not read)."""
    primary, secondary = pty.openpty() if terminal else (-1, -1)
    try:
        done = subprocess.run(
            [*entry, *args],
            stdout=secondary if terminal else subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
            env={**CLEAN_ENV, "PYTHONPROFILEIMPORTTIME": "1", **(env or {})},
        )
    finally:
        if terminal:
            os.close(primary)
            os.close(secondary)
    modules = {
        line.rsplit("|", 1)[1].strip()
        for line in done.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    return done.returncode, modules


def loaded(modules: set[str], packages: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in packages)


@pytest.mark.parametrize("entry", [MODULE, SCRIPT], ids=["python -m cluster.cli", "tradewind"])
def test_version_imports_no_server_side_library(entry: list[str]) -> None:
    status, modules = run_and_list_modules(["version"], entry=entry)
    assert status == 0
    assert "cluster.cli.main" in modules
    assert loaded(modules, SERVER_SIDE) == []
    assert sorted(m for m in modules if m.startswith("cluster")) == [
        "cluster",
        "cluster.cli",
        "cluster.cli.lazy",
        "cluster.cli.main",
        "cluster.errors",
    ]


def test_help_lists_every_command_without_importing_one() -> None:
    status, modules = run_and_list_modules(["--help"])
    assert status == 0
    assert loaded(modules, SERVER_SIDE) == []
    assert sorted(m for m in modules if m.endswith("_cmd")) == []


#: what the commands scripts poll must not load: SQLAlchemy (its Core alone cost 0.4 s of
#: CPU), the models, Alembic, the servers' libraries, MySQL/PostgreSQL drivers on SQLite
POLLED_MUST_NOT_LOAD = (
    "sqlalchemy",
    "alembic",
    "flask",
    "werkzeug",
    "celery",
    "kombu",
    "kazoo",
    "pymysql",
    "psycopg",
    "jinja2",
)
#: each polled command, the exit code that shows it ran its query on an empty metastore,
#: and whether it may print a table (rich) or YAML
POLLED = [
    (["dags", "list", "-o", "json"], 0),
    (["dags", "list"], 0),  # a table, piped: fixed-width text, no rich
    (["dags", "state", "etl", "2024-01-01"], 3),
    (["tasks", "state", "etl", "extract", "nope"], 3),
    (["tasks", "states-for-dag-run", "etl", "nope", "-o", "plain"], 3),
]


@pytest.fixture(scope="module")
def migrated_home(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    home = tmp_path_factory.mktemp("home")
    env = {"TRADEWIND_HOME": str(home), "TRADEWIND__METASTORE__URL": ""}
    subprocess.run(
        [sys.executable, "-m", "cluster.cli", "db", "migrate"],
        env={**CLEAN_ENV, **env},
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    return env


@pytest.mark.parametrize(("args", "status"), POLLED, ids=[" ".join(a) for a, _ in POLLED])
def test_polled_commands_read_through_the_driver_alone(
    migrated_home: dict[str, str], args: list[str], status: int
) -> None:
    """``dags list``, ``dags state``, ``tasks state`` and ``tasks states-for-dag-run``
    read with sqlite3 alone: no SQLAlchemy (ORM or Core), no models, no server side."""
    code, modules = run_and_list_modules(args, migrated_home)
    assert code == status  # the command ran its query
    # (a module imported by importlib.import_module is not itself reported by
    # -X importtime, only what it imports: look for the package's modules)
    assert loaded(modules, ("sqlite3",)) != []
    assert loaded(modules, POLLED_MUST_NOT_LOAD) == []
    assert loaded(modules, ("rich", "yaml")) == []  # neither -o json nor -o plain needs them
    heavy = ("cluster.metastore.models", "cluster.metastore.engine", "cluster.cli.app")
    assert [m for m in modules if m.startswith(heavy)] == []
    assert [m for m in modules if m.startswith(("cluster.web", "cluster.scheduler"))] == []


def test_the_default_table_on_a_terminal_loads_rich_but_still_no_sqlalchemy(
    migrated_home: dict[str, str],
) -> None:
    code, modules = run_and_list_modules(["dags", "list"], migrated_home, terminal=True)
    assert code == 0
    assert loaded(modules, ("rich",)) != []
    assert loaded(modules, POLLED_MUST_NOT_LOAD) == []


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_every_lazy_entry_is_the_command_it_names(group: str) -> None:
    lazy_group = GROUPS[group]
    assert isinstance(lazy_group, LazyGroup)
    ctx = click.Context(lazy_group)
    for name, entry in lazy_group.lazy.items():
        command = lazy_group.get_command(ctx, name)
        assert command is not None and command.name == name, entry
        for limit in (30, 45, 72, 200):  # the listing shortens the table's text as click would
            listed = click.Command(name, help=entry.help).get_short_help_str(limit)
            assert listed == command.get_short_help_str(limit), (group, name, limit)


def test_an_unknown_command_is_still_one_line() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "cluster.cli", "dags", "nonsense"],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "tradewind: error: tradewind dags: No such command 'nonsense'."
    ]
