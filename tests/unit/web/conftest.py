"""Fixtures for the web tests: a real app over a migrated SQLite metastore.

``app`` is :func:`cluster.web.create_app` on the test's settings; ``seeded`` writes a
small world into its metastore (see :func:`web_harness.seed`); ``tokens`` creates one
user per role and gives their API tokens, so requests skip the (slow, on purpose)
password hashing.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from web_harness import PASSWORD, ROLES, Api, build_app, context_of, seed

from cluster.config import Settings
from cluster.metastore import users
from cluster.metastore.engine import SessionFactory


@pytest.fixture
def web_settings(settings: Settings) -> Settings:
    return settings.replace("webserver", secret_key="test-secret-key")


@pytest.fixture
def app(web_settings: Settings) -> Iterator[Flask]:
    app = build_app(web_settings)
    yield app
    context_of(app).engine.dispose()


@pytest.fixture
def factory(app: Flask) -> SessionFactory:
    return context_of(app).session_factory


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def tokens(factory: SessionFactory) -> dict[str, str]:
    """``{role: API token}`` for users named after their role (``admin``, ``op``, ...)."""
    result = {}
    with factory.begin() as session:
        for role in ROLES:
            users.create_user(role.lower(), PASSWORD, role=role, session=session)
            result[role] = users.create_api_token(role.lower(), "tests", session=session)[1]
    return result


@pytest.fixture
def admin(client: FlaskClient, tokens: dict[str, str], seeded: None) -> Api:
    return Api(client, tokens["Admin"])


@pytest.fixture
def seeded(factory: SessionFactory, web_settings: Settings) -> None:
    with factory.begin() as session:
        seed(session, web_settings)
