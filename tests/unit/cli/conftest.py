"""Fixtures for the CLI tests: a private Tradewind home with a SQLite metastore.

``tradewind(...)`` runs a command through click's ``CliRunner`` with a fresh
:class:`App` built from an explicit environment, so the developer's own
``TRADEWIND_*`` variables never leak in. ``main(...)`` runs the real entry
point, :func:`cluster.cli.main.main`, to check what users see when a command fails:
one line on stderr and an exit code.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from cryptography.fernet import Fernet, MultiFernet

from cluster.cli import main as entry
from cluster.cli.app import App
from cluster.metastore.engine import SessionFactory
from cluster.metastore.secrets import make_fernet

Invoke = Callable[..., Result]


@dataclass(frozen=True)
class Exit:
    """What a user sees when ``tradewind`` ends."""

    code: int
    out: str
    err: str

    @property
    def is_one_line_error(self) -> bool:
        """The contract of every failing command: non-zero exit, one line on stderr."""
        lines = self.err.splitlines()
        return self.code != 0 and len(lines) == 1 and lines[0].startswith("tradewind: error: ")


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir()
    return {
        "TRADEWIND_HOME": str(home),
        "TRADEWIND__CORE__FERNET_KEY": Fernet.generate_key().decode(),
    }


@pytest.fixture
def tradewind(cli_env: dict[str, str]) -> Invoke:
    """Run ``tradewind ARGS...``; ``input=`` feeds prompts, ``env=`` replaces the environment."""
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
        app = App(cli_env if env is None else env)
        try:
            return runner.invoke(entry.cli, list(args), obj=app, input=input)
        finally:
            if "engine" in app.__dict__:
                app.engine.dispose()

    return invoke


@pytest.fixture
def ok(tradewind: Invoke) -> Invoke:
    """Like ``tradewind``, but fail the test (showing why) unless the command succeeds."""

    def invoke(*args: str, **kwargs: str | None) -> Result:
        result = tradewind(*args, **kwargs)
        assert result.exit_code == 0, (result.output, result.stderr, result.exception)
        return result

    return invoke


@pytest.fixture
def migrated(ok: Invoke) -> None:
    ok("db", "migrate")


@pytest.fixture
def main(
    cli_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., Exit]:
    """Run the real entry point ``main(ARGS)`` with the test's home and Fernet key."""
    for name in list(os.environ):
        if name.startswith("TRADEWIND"):
            monkeypatch.delenv(name)
    for name, value in cli_env.items():
        monkeypatch.setenv(name, value)

    def run(*args: str) -> Exit:
        capsys.readouterr()
        with pytest.raises(SystemExit) as ended:
            entry.main(list(args))
        captured = capsys.readouterr()
        code = ended.value.code
        return Exit(code if isinstance(code, int) else 1, captured.out, captured.err)

    return run


@pytest.fixture
def metastore(cli_env: dict[str, str]) -> Iterator[SessionFactory]:
    """Sessions on the metastore the commands use, to check what they wrote."""
    app = App(cli_env)
    yield app.session_factory
    app.engine.dispose()


@pytest.fixture
def fernet(cli_env: dict[str, str]) -> MultiFernet:
    return make_fernet(cli_env["TRADEWIND__CORE__FERNET_KEY"])
