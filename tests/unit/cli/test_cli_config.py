"""``tradewind config show`` and ``tradewind version``."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from cluster import __version__
from tests.unit.cli.conftest import Exit, Invoke


def test_version(ok: Invoke) -> None:
    assert ok("version").stdout.strip() == __version__


def test_config_show_masks_secrets(ok: Invoke, cli_env: dict[str, str]) -> None:
    env = {**cli_env, "TRADEWIND__METASTORE__URL": "mysql+pymysql://tw:hunter2@db/tw"}
    shown = ok("config", "show", env=env).stdout
    assert 'url = "mysql+pymysql://tw:***@db/tw"' in shown
    assert 'fernet_key = "***"' in shown
    assert "hunter2" not in shown and cli_env["TRADEWIND__CORE__FERNET_KEY"] not in shown


def test_config_show_one_section_as_json(ok: Invoke, cli_env: dict[str, str]) -> None:
    env = {**cli_env, "TRADEWIND__CORE__PARALLELISM": "7"}
    shown = json.loads(ok("config", "show", "--section", "core", "-o", "json", env=env).stdout)
    assert list(shown) == ["core"]
    assert shown["core"]["parallelism"] == 7


def test_bad_setting_and_bad_section_are_one_line(
    main: Callable[..., Exit], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main("config", "show", "--section", "nope").is_one_line_error
    monkeypatch.setenv("TRADEWIND__CORE__PARALLELISM", "lots")
    result = main("config", "show")
    assert result.is_one_line_error
    assert "core.parallelism: expected a number" in result.err
