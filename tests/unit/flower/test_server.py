"""How ``[flower]`` becomes Flower's options, and the starts that are refused."""

from __future__ import annotations

import pytest

from cluster.config import FlowerSettings, Settings
from cluster.errors import ConfigError
from cluster.executors.celery_app import build_celery_app
from cluster.flower.server import (
    GuardedFlower,
    build_flower,
    check_protection,
    flower_options,
    tornado_settings,
)


@pytest.mark.parametrize(
    ("flower", "starts"),
    [
        (FlowerSettings(), 'flower.auth is empty: set [flower] auth = "webserver"'),
        (FlowerSettings(auth="basic"), "flower.basic_auth is empty"),
        (FlowerSettings(auth="basic", basic_auth=["nopassword"]), "user:password"),
        (FlowerSettings(auth="basic", basic_auth=["ops:"]), "user:password"),
    ],
)
def test_an_unprotected_flower_is_refused_in_one_line(flower: FlowerSettings, starts: str) -> None:
    with pytest.raises(ConfigError) as caught:
        check_protection(flower)
    message = str(caught.value)
    assert starts in message and "\n" not in message


def test_basic_auth_pairs_go_to_flower_only_in_basic_mode() -> None:
    basic = flower_options(FlowerSettings(auth="basic", basic_auth=["ops:pw"], port=5566))
    assert basic.basic_auth == ["ops:pw"] and basic.port == 5566 and basic.auth == ""
    users = flower_options(FlowerSettings(auth="webserver", basic_auth=["ops:pw"]))
    assert users.basic_auth == []
    assert basic.persistent is False and basic.inspect_timeout > 0


def test_the_url_prefix_moves_flower_s_pages_and_static_files() -> None:
    prefixed = FlowerSettings(auth="basic", basic_auth=["a:b"], url_prefix="/flower/")
    assert flower_options(prefixed).url_prefix == "flower"
    values = tornado_settings(prefixed)
    assert values["static_url_prefix"] == "/flower/static/"
    assert values["login_url"] == "/flower/login"
    assert tornado_settings(FlowerSettings())["static_url_prefix"] == "/static/"


def test_webserver_sign_in_needs_the_guard(settings: Settings) -> None:
    celery = build_celery_app(settings.replace("celery", broker_urls=["amqp://h1//"]))
    with pytest.raises(ConfigError, match="metastore's users"):
        build_flower(FlowerSettings(auth="webserver"), celery, None)
    basic = build_flower(FlowerSettings(auth="basic", basic_auth=["a:b"]), celery, None)
    assert not isinstance(basic, GuardedFlower)
    assert basic.capp is celery
