"""``tradewind cluster doctor``: check every endpoint this node is configured to use.

One :class:`Check` per endpoint: the metastore (connect, schema at the revision this
code expects), each broker URL (an AMQP connection, with the node's name when its
management API answers), each ZooKeeper host (the ``srvr`` four-letter word) when the
schedulers elect through ZooKeeper, the log server of every live worker recorded in
``component`` (a signed request), and whether every live component shares this node's
secrets (the fingerprints they recorded). A failed check carries a hint of what to
look at: the message an operator sees is the start of the fix, not a stack trace.

Nothing here prints; the CLI does.
"""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import pika.exceptions
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from cluster.config import HaSettings, Settings
from cluster.deploy.management import ManagementApi, safe_url
from cluster.deploy.rabbitmq import connect_node, endpoint, management_urls
from cluster.errors import BrokerError, ConfigError, MetastoreError
from cluster.logserver.signing import sign
from cluster.metastore.components import ComponentRecord, list_components, settings_fingerprints
from cluster.metastore.engine import SessionFactory
from cluster.metastore.migrate import current_revision, head_revision

#: seconds one network check may take
TIMEOUT = 3.0
ZOOKEEPER_PORT = 2181
#: a component whose heartbeat is older than this is not checked (it is gone)
MIN_LIVE_SECONDS = 60.0
#: a path no log server holds: a right signature gets 404, a wrong one 403
PROBE_PATH = "tradewind-doctor-probe"

Status = Literal["ok", "fail", "skip"]


@dataclass(frozen=True)
class Check:
    """One line of the report: what was checked, where, how it went, and what to do."""

    name: str
    target: str
    status: Status
    detail: str = ""
    hint: str = ""

    @property
    def failed(self) -> bool:
        return self.status == "fail"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Environment:
    """What the checks run against (injected so tests can shorten timeouts)."""

    settings: Settings
    engine: Engine
    sessions: SessionFactory
    now: Callable[[], datetime]
    timeout: float = TIMEOUT


def run_checks(env: Environment) -> list[Check]:
    """Every check, in a fixed order; a failure never stops the next one."""
    checks = [check_metastore(env.engine)]
    checks += check_brokers(env.settings, timeout=env.timeout)
    checks += check_zookeeper(env.settings.ha, timeout=env.timeout)
    try:
        with env.sessions() as session:
            components = list_components(session=session)
    except SQLAlchemyError:
        detail = "not read: fix the metastore first (workers and shared settings come from it)"
        return [*checks, Check("components", "component table", "skip", detail)]
    live = live_components(components, env.now(), env.settings)
    checks += check_log_servers(live, env.settings, timeout=env.timeout)
    checks += check_fingerprints(live, env.settings)
    return checks


def live_components(
    components: Sequence[ComponentRecord], now: datetime, settings: Settings
) -> list[ComponentRecord]:
    """Running components with a recent heartbeat (ten heartbeats, at least a minute)."""
    window = timedelta(seconds=max(MIN_LIVE_SECONDS, 10 * settings.scheduler.heartbeat_interval))
    return [c for c in components if c.state == "running" and now - c.heartbeat_at <= window]


# --- metastore -----------------------------------------------------------------------


def check_metastore(engine: Engine) -> Check:
    target = engine.url.render_as_string(hide_password=True)
    try:
        current = current_revision(engine)
    except MetastoreError as exc:
        cause = getattr(exc.__cause__, "orig", None) or exc.__cause__ or exc
        return Check(
            "metastore",
            target,
            "fail",
            f"cannot connect: {str(cause).splitlines()[0]}",
            "is the database server running on that host, is the port open, are the user, "
            "password and database in metastore.url right (and granted to this host)?",
        )
    head = head_revision()
    if current != head:
        found = "empty" if current is None else f"at {current}"
        return Check(
            "metastore",
            target,
            "fail",
            f"schema {found}, code needs {head}",
            "run 'tradewind db migrate' (once, from any node) and restart the processes",
        )
    return Check("metastore", target, "ok", f"connected, schema at {head} (current)")


# --- broker --------------------------------------------------------------------------


def check_brokers(settings: Settings, *, timeout: float) -> list[Check]:
    celery = settings.celery
    if not celery.broker_urls:
        detail = "celery.broker_urls is empty"
        if settings.core.executor == "celery":
            hint = "core.executor is celery: give every RabbitMQ node's URL in celery.broker_urls"
            return [Check("broker", "-", "fail", detail, hint)]
        return [Check("broker", "-", "skip", f"{detail} (local executor)")]
    apis = management_urls(celery)
    checks = []
    for index, url in enumerate(celery.broker_urls):
        target = safe_url(url)
        try:
            connect_node(url, timeout=timeout).close()
        except BrokerError as exc:
            checks.append(Check("broker", target, "fail", str(exc), _broker_hint(url, exc)))
            continue
        name = _node_name(apis[index], timeout) if len(apis) == len(celery.broker_urls) else None
        detail = f"AMQP connected, node {name}" if name else "AMQP connected"
        checks.append(Check("broker", target, "ok", detail))
    return checks


def _node_name(management_url: str, timeout: float) -> str | None:
    """The node's name from its management API; ``None`` when that does not answer."""
    try:
        node = ManagementApi(management_url, timeout=timeout).overview().get("node")
    except BrokerError:
        return None
    return node if isinstance(node, str) else None


def _broker_hint(url: str, exc: BrokerError) -> str:
    where = endpoint(url)
    text = repr(exc.__cause__)
    if isinstance(exc.__cause__, pika.exceptions.ProbableAuthenticationError) or (
        "ACCESS_REFUSED" in text or "AuthenticationError" in text
    ):
        return (
            f"RabbitMQ at {where} refused the user: check the user and password in "
            "celery.broker_urls (rabbitmqctl list_users)"
        )
    if isinstance(exc.__cause__, pika.exceptions.ProbableAccessDeniedError) or (
        "AccessDenied" in text or "NOT_ALLOWED" in text
    ):
        return (
            f"RabbitMQ at {where} denied the vhost: does it exist and may the user use it "
            "(rabbitmqctl list_vhosts; list_permissions -p VHOST)?"
        )
    return (
        f"is RabbitMQ running on {where}, is the port open (firewall), are the user, "
        "password and vhost in celery.broker_urls right?"
    )


# --- ZooKeeper -----------------------------------------------------------------------


def check_zookeeper(ha: HaSettings, *, timeout: float) -> list[Check]:
    if ha.election != "zookeeper":
        return [Check("zookeeper", "-", "skip", "ha.election = none: no ZooKeeper needed")]
    if not ha.zookeeper_hosts:
        hint = "ha.election is zookeeper: list the ensemble in ha.zookeeper_hosts"
        return [Check("zookeeper", "-", "fail", "ha.zookeeper_hosts is empty", hint)]
    return [check_zookeeper_host(host, timeout=timeout) for host in ha.zookeeper_hosts]


def check_zookeeper_host(host: str, *, timeout: float) -> Check:
    """``srvr`` on one host: its mode (leader, follower, standalone) when it serves."""
    address, _, raw_port = host.rpartition(":") if ":" in host else (host, "", "")
    port = int(raw_port) if raw_port.isdigit() else ZOOKEEPER_PORT
    try:
        answer = four_letter_word(address, port, "srvr", timeout=timeout)
    except OSError as exc:
        return Check(
            "zookeeper",
            host,
            "fail",
            f"cannot connect: {exc.strerror or exc}",
            f"is ZooKeeper running on {address}:{port} (clientPort, clientPortAddress in "
            "zoo.cfg), is the port open, is ha.zookeeper_hosts right?",
        )
    mode = next(
        (line.split(":", 1)[1].strip() for line in answer.splitlines() if line.startswith("Mode:")),
        None,
    )
    if mode is None:
        return Check(
            "zookeeper",
            host,
            "fail",
            f"no mode in the answer: {answer.strip()[:80]!r}",
            "add srvr to 4lw.commands.whitelist in zoo.cfg; a node that answers "
            "'not currently serving requests' has no quorum: are the other nodes up?",
        )
    return Check("zookeeper", host, "ok", f"serving, mode {mode}")


def four_letter_word(host: str, port: int, word: str, *, timeout: float) -> str:
    """Send a ZooKeeper four-letter word and read the whole answer.

    :raises OSError: when the host cannot be reached.
    """
    with socket.create_connection((host, port), timeout=timeout) as conn:
        conn.sendall(word.encode())
        chunks = []
        while chunk := conn.recv(4096):
            chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")


# --- workers' log servers ------------------------------------------------------------


def check_log_servers(
    live: Sequence[ComponentRecord], settings: Settings, *, timeout: float
) -> list[Check]:
    workers = [c for c in live if c.kind == "worker"]
    if not workers:
        return [Check("log server", "-", "skip", "no live worker in the component table")]
    return [_check_log_server(worker, settings, timeout) for worker in workers]


def _check_log_server(worker: ComponentRecord, settings: Settings, timeout: float) -> Check:
    extra = worker.extra if isinstance(worker.extra, dict) else {}
    base = extra.get("log_server_url")
    target = f"worker {worker.host} (pid {worker.pid})"
    if not isinstance(base, str):
        return Check("log server", target, "skip", "the worker recorded no log server URL")
    try:
        signed = sign(PROBE_PATH, key=settings.webserver.secret_key, now=time.time(), ttl=30)
    except ConfigError as exc:
        return Check("log server", base, "fail", str(exc), "set webserver.secret_key")
    try:
        with urllib.request.urlopen(signed.url(base), timeout=timeout) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return Check(
            "log server",
            base,
            "fail",
            f"{target}: cannot connect: {reason}",
            "is 'tradewind worker' running there, is logging.log_server_port open to the "
            "webservers, does the worker's core.hostname resolve to its address?",
        )
    if status == 404:
        return Check("log server", base, "ok", f"{target}: answers signed requests")
    if status == 403:
        return Check(
            "log server",
            base,
            "fail",
            f"{target}: refused this node's signature (403)",
            "webserver.secret_key differs between this node and that worker: set the same "
            "secret on every node and restart the worker",
        )
    return Check(
        "log server",
        base,
        "fail",
        f"{target}: unexpected HTTP {status}",
        "is something else listening on logging.log_server_port?",
    )


# --- shared settings -----------------------------------------------------------------

_SECRET_NAMES = {"secret_key": "webserver.secret_key", "fernet_key": "core.fernet_key"}
_SECRET_HINTS = {
    "secret_key": "log fetches fail with 403 and sessions end when a request reaches "
    "another webserver: set the same webserver.secret_key on every node",
    "fernet_key": "connections and variables encrypted elsewhere cannot be decrypted: set "
    "the same core.fernet_key on every node",
}


def check_fingerprints(live: Sequence[ComponentRecord], settings: Settings) -> list[Check]:
    """Per shared secret: does every live component that recorded it match this node?"""
    mine = settings_fingerprints(settings)
    silent = [c for c in live if not c.fingerprints]
    checks = []
    for key, own in mine.items():
        recorded = [c for c in live if key in c.fingerprints]
        differing = [c for c in recorded if c.fingerprints[key] != own]
        note = f"; {len(silent)} component(s) record none" if silent else ""
        if differing:
            who = ", ".join(f"{c.kind} {c.host} ({c.fingerprints[key]})" for c in differing)
            detail = f"this node {own}, differs on: {who}{note}"
            checks.append(
                Check("shared setting", _SECRET_NAMES[key], "fail", detail, _SECRET_HINTS[key])
            )
        elif recorded:
            detail = f"{len(recorded)} component(s) match this node ({own}){note}"
            checks.append(Check("shared setting", _SECRET_NAMES[key], "ok", detail))
        else:
            detail = f"no live component recorded it (this node {own})"
            checks.append(Check("shared setting", _SECRET_NAMES[key], "skip", detail))
    return checks
