"""``tradewind triggerer``: the triggerer role command (standalone runs it as a child).

Run one on every master: the triggerers share the deferred tasks' triggers, and when
one dies the others take its triggers over ``triggerer.health_timeout`` after its last
heartbeat. It needs the Fernet key (trigger arguments are encrypted at rest) and waits
for the metastore's schema at start-up like the other role commands. Triggers run with
the metastore-backed runtime installed, so ``Variable``, connections and the external
task trigger's state lookups work in them as in a task. With ``metrics.enabled`` it
serves Prometheus metrics on ``metrics.host:metrics.triggerer_port``.

SIGTERM or Ctrl-C stops it cleanly: triggers are cancelled (their ``cleanup()`` runs),
events already yielded are written, and its rows are handed back at once.
"""

from __future__ import annotations

import logging

import click
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from cluster.cli.app import App, pass_app
from cluster.cli.scheduler_cmd import configure_logging, require_fernet_key, run_role
from cluster.config import Settings
from cluster.dagfiles.environment import prepare_user_code
from cluster.execution.handle import MetastoreRuntime
from cluster.metastore.components import settings_fingerprints
from cluster.metastore.migrate import wait_for_schema
from cluster.metastore.secrets import make_fernet
from cluster.metrics.triggerer import TriggererMetrics
from cluster.sdk.runtime import set_runtime
from cluster.triggerer.service import TriggererService, check_settings

log = logging.getLogger(__name__)


def build_triggerer(
    settings: Settings, *, engine: Engine, sessions: sessionmaker[Session]
) -> TriggererService:
    """Check the settings and the Fernet key, set up user code (trigger classes may live in
    the plugins or DAG folder), wait for the schema, install the runtime, build the service.

    :raises ConfigError: in one line, for a missing key or unusable triggerer settings.
    """
    require_fernet_key(settings)
    check_settings(settings.triggerer)
    prepare_user_code(settings)
    wait_for_schema(engine, settings.metastore.migration_wait_timeout)
    fernet = make_fernet(settings.core.fernet_key)
    set_runtime(MetastoreRuntime(sessions=lambda: sessions, fernet=fernet))
    return TriggererService(
        settings.triggerer,
        sessions=sessions,
        fernet=fernet,
        host=settings.core.hostname,
        metrics=TriggererMetrics(),
        fingerprints=settings_fingerprints(settings),
    )


@click.command("triggerer")
@click.option(
    "--capacity",
    type=click.IntRange(min=1),
    default=None,
    help="Triggers to run at most (default: triggerer.capacity).",
)
@pass_app
def triggerer(app: App, capacity: int | None) -> None:
    """Run the triggerer: the triggers of deferred tasks, on asyncio, until stopped."""
    settings = app.settings
    if capacity is not None:
        settings = settings.replace("triggerer", capacity=capacity)
    configure_logging(settings)
    service = build_triggerer(settings, engine=app.engine, sessions=app.session_factory)
    run_role(service, settings, service.metrics.registry, settings.metrics.triggerer_port)
