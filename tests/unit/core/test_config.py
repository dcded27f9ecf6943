"""Settings: defaults < tradewind.toml < environment, indirection, clear errors, masking."""

from __future__ import annotations

from pathlib import Path

import pytest

from cluster.config import effective_settings, load_settings
from cluster.errors import ConfigError


def test_defaults_live_under_home(tmp_path: Path) -> None:
    settings = load_settings({}, home=tmp_path)
    assert settings.core.dags_folder == tmp_path / "dags"
    assert settings.logging.base_log_folder == tmp_path / "logs"
    assert settings.metastore.url == f"sqlite:///{tmp_path / 'tradewind.db'}"
    assert settings.core.executor == "local"
    assert settings.ha.election == "none"


def test_home_comes_from_environment(tmp_path: Path) -> None:
    settings = load_settings({"TRADEWIND_HOME": str(tmp_path)})
    assert settings.home == tmp_path.resolve()


def test_toml_overrides_defaults_and_environment_overrides_toml(tmp_path: Path) -> None:
    (tmp_path / "tradewind.toml").write_text('[core]\nparallelism = 8\nexecutor = "celery"\n')
    env = {"TRADEWIND__CORE__PARALLELISM": "4"}
    settings = load_settings(env, home=tmp_path)
    assert settings.core.parallelism == 4
    assert settings.core.executor == "celery"


def test_environment_values_parse_as_json_or_comma_lists(tmp_path: Path) -> None:
    env = {
        "TRADEWIND__CELERY__BROKER_URLS": "amqp://a:1@h1//,amqp://a:1@h2//",
        "TRADEWIND__HA__ZOOKEEPER_HOSTS": '["z1:2181", "z2:2181"]',
        "TRADEWIND__CORE__LOAD_EXAMPLES": "false",
        "TRADEWIND__HA__SESSION_TIMEOUT": "2.5",
    }
    settings = load_settings(env, home=tmp_path)
    assert settings.celery.broker_urls == ["amqp://a:1@h1//", "amqp://a:1@h2//"]
    assert settings.ha.zookeeper_hosts == ["z1:2181", "z2:2181"]
    assert settings.core.load_examples is False
    assert settings.ha.session_timeout == 2.5


def test_secret_from_file_and_from_command(tmp_path: Path) -> None:
    secret = tmp_path / "url.txt"
    secret.write_text("mysql+pymysql://tw:from-file@db/tw\n")
    (tmp_path / "tradewind.toml").write_text(f'[metastore]\nurl_file = "{secret}"\n')
    settings = load_settings({"TRADEWIND__WEBSERVER__SECRET_KEY_CMD": "echo s3cret"}, home=tmp_path)
    assert settings.metastore.url == "mysql+pymysql://tw:from-file@db/tw"
    assert settings.webserver.secret_key == "s3cret"


def test_a_later_plain_value_replaces_an_earlier_indirection(tmp_path: Path) -> None:
    (tmp_path / "tradewind.toml").write_text('[webserver]\nsecret_key_cmd = "exit 3"\n')
    settings = load_settings({"TRADEWIND__WEBSERVER__SECRET_KEY": "plain"}, home=tmp_path)
    assert settings.webserver.secret_key == "plain"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"TRADEWIND__CORE__PARALLELISM": "many"}, "core.parallelism: expected a number"),
        ({"TRADEWIND__CORE__PARALLELISM": "-1"}, "core.parallelism: must not be negative"),
        ({"TRADEWIND__CORE__EXECUTOR": "kubernetes"}, "core.executor: 'kubernetes' is not one of"),
        ({"TRADEWIND__CORE__LOAD_EXAMPLES": "maybe"}, "core.load_examples: expected true or false"),
        ({"TRADEWIND__CORE__NO_SUCH_KEY": "1"}, "core.no_such_key: unknown setting"),
        ({"TRADEWIND__NOPE__KEY": "1"}, "unknown section 'nope'"),
        ({"TRADEWIND__CORE": "1"}, "expected TRADEWIND__<SECTION>__<KEY>"),
        (
            {"TRADEWIND__METASTORE__URL_CMD": "exit 3"},
            "metastore.url_cmd: command 'exit 3' exited 3",
        ),
        ({"TRADEWIND__METASTORE__URL_FILE": "/nonexistent/x"}, "metastore.url_file: cannot read"),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("[", r"\[")):
        load_settings(env, home=tmp_path)


def test_broken_toml_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "tradewind.toml").write_text("[core\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings({}, home=tmp_path)


def test_effective_settings_mask_secrets(tmp_path: Path) -> None:
    env = {
        "TRADEWIND__METASTORE__URL": "mysql+pymysql://tw:hunter2@db:3306/tw",
        "TRADEWIND__CORE__FERNET_KEY": "abc",
        "TRADEWIND__CELERY__BROKER_URLS": "amqp://u:pw@r1:5672//",
    }
    shown = effective_settings(load_settings(env, home=tmp_path))
    assert shown["metastore"]["url"] == "mysql+pymysql://tw:***@db:3306/tw"
    assert shown["core"]["fernet_key"] == "***"
    assert shown["celery"]["broker_urls"] == ["amqp://u:***@r1:5672//"]
    assert "hunter2" not in repr(shown)


def test_replace_changes_one_section(tmp_path: Path) -> None:
    settings = load_settings({}, home=tmp_path)
    changed = settings.replace("core", parallelism=3)
    assert changed.core.parallelism == 3
    assert settings.core.parallelism == 32
