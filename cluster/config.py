"""Typed settings: built-in defaults < ``$TRADEWIND_HOME/tradewind.toml`` < environment.

Each process entry point calls :func:`load_settings` once and passes the result down;
nothing else reads the environment. Any key may instead be given as ``KEY_file`` (the
value is the file's content) or ``KEY_cmd`` (the value is a shell command's output), so
secrets such as the metastore password stay out of ``tradewind.toml``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from cluster.errors import ConfigError

ENV_PREFIX = "TRADEWIND__"
_SECRET = {"secret": True}


def _secret(default: Any = "") -> Any:
    return field(default=default, metadata=_SECRET)


@dataclass(frozen=True)
class CoreSettings:
    dags_folder: Path = Path("dags")
    load_examples: bool = True
    dags_are_paused_at_creation: bool = True
    executor: Literal["local", "celery"] = "local"
    parallelism: int = 32
    fernet_key: str = _secret()
    dag_file_processor_timeout: float = 30.0
    dag_source: Literal["local", "metastore"] = "local"
    xcom_max_size: int = 1_048_576
    #: the longest list or dict a task may return for a mapped task to expand over
    #: (Airflow's ``[core] max_map_length``); past it, the returning task fails
    max_map_length: int = 1024
    default_timezone: str = "UTC"
    hostname: str = ""
    #: modules with ``AirflowPlugin`` classes (timetables, macros), relative to home
    plugins_folder: Path = Path("plugins")
    #: ``import airflow…`` in DAG files and plugins resolves to Tradewind's modules
    airflow_compat: bool = True
    #: record tasks' SLA misses and report them (Airflow's ``[core] check_slas``)
    check_slas: bool = True


@dataclass(frozen=True)
class MetastoreSettings:
    url: str = _secret()
    #: connections an engine keeps; as many more are opened under load and closed on return
    pool_size: int = 2
    #: seconds a connection may sit idle before the server closes it (0: never)
    idle_timeout: float = 60.0
    echo: bool = False
    #: PostgreSQL reached through PgBouncer in transaction pooling mode
    pgbouncer: bool = False
    connect_retries: int = 10
    #: how long a role command waits at start-up for the metastore to answer and its
    #: schema to reach this code's revision (Airflow's ``--migration-wait-timeout``)
    migration_wait_timeout: float = 60.0


@dataclass(frozen=True)
class SchedulerSettings:
    poll_interval: float = 1.0
    #: seconds between passes over the DAG folders: a pass costs a stat per unchanged file
    dag_dir_list_interval: float = 1.0
    #: children importing changed DAG files at once; 0: one per core
    parsing_processes: int = 0
    zombie_threshold: float = 30.0
    heartbeat_interval: float = 2.0
    queued_timeout: float = 600.0
    max_dagruns_to_create_per_loop: int = 10


@dataclass(frozen=True)
class TriggererSettings:
    """``tradewind triggerer``: the process that runs deferred tasks' triggers (asyncio)."""

    #: triggers one triggerer runs at most (Airflow's ``[triggerer] default_capacity``)
    capacity: int = 1000
    #: seconds without a heartbeat after which a triggerer's triggers are taken over by
    #: another (Airflow's ``triggerer_health_check_threshold``); a triggerer that cannot
    #: beat for half of it stops its triggers itself
    health_timeout: float = 30.0
    #: seconds between a triggerer's heartbeats (well under half of ``health_timeout``)
    heartbeat_interval: float = 2.0
    #: seconds between claiming passes; fired events are written at once
    poll_interval: float = 1.0


@dataclass(frozen=True)
class CelerySettings:
    broker_urls: list[str] = field(default_factory=list, metadata=_SECRET)
    default_queue: str = "default"
    queues: list[str] = field(default_factory=lambda: ["default"])
    worker_concurrency: int = 8
    events_exchange: str = "tradewind.events"
    #: RabbitMQ management API base URLs (``http://user:pass@host:15672``), one per node;
    #: empty: derived from ``broker_urls`` (same host and credentials, port 15672)
    management_urls: list[str] = field(default_factory=list, metadata=_SECRET)
    #: workers answer Celery's remote control (``celery inspect``, Flower) and send task
    #: events (Flower's task list); off saves each worker a few publishes per task
    worker_remote_control: bool = True


@dataclass(frozen=True)
class HaSettings:
    election: Literal["none", "zookeeper"] = "none"
    zookeeper_hosts: list[str] = field(default_factory=list)
    session_timeout: float = 4.0
    chroot: str = "/tradewind"

    @property
    def election_path(self) -> str:
        """The schedulers' election znode, ``{chroot}/scheduler``."""
        return "/" + "/".join([*filter(None, self.chroot.split("/")), "scheduler"])


@dataclass(frozen=True)
class WebserverSettings:
    secret_key: str = _secret()
    base_url: str = "http://localhost:8080"
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 2
    log_fetch_timeout: float = 5.0
    #: how many proxies (HAProxy: 1) in front of the webserver to trust for
    #: ``X-Forwarded-For``; 0 ignores the header (a client could forge it). Login
    #: throttling and the access log key on the address this yields.
    proxy_fix_x_for: int = 0


@dataclass(frozen=True)
class LoggingSettings:
    base_log_folder: Path = Path("logs")
    level: str = "INFO"
    log_server_port: int = 8793
    log_url_expiry: float = 30.0


@dataclass(frozen=True)
class MetricsSettings:
    """Prometheus metrics: schedulers and workers serve them on their own port, webservers
    at ``/metrics`` (signed-in users only)."""

    enabled: bool = False
    host: str = "127.0.0.1"
    scheduler_port: int = 9180
    worker_port: int = 9181
    triggerer_port: int = 9182
    #: prometheus_client's multiprocess files (webserver and worker processes), under home
    multiproc_dir: Path = Path("metrics")


@dataclass(frozen=True)
class SmtpSettings:
    """The SMTP server ``send_email`` and ``EmailOperator`` use (Airflow's ``[smtp]``)."""

    smtp_host: str = "localhost"
    smtp_port: int = 25
    smtp_starttls: bool = True
    smtp_ssl: bool = False
    smtp_user: str = ""
    smtp_password: str = _secret()
    smtp_mail_from: str = "airflow@example.com"
    smtp_timeout: float = 30.0
    smtp_retry_limit: int = 5


@dataclass(frozen=True)
class FlowerSettings:
    """``tradewind flower``: Celery Flower on the cluster's brokers, behind a sign-in.

    ``auth`` is ``webserver`` (the webserver's users with the Admin or Op role, by HTTP
    basic auth) or ``basic`` (Flower's own ``user:password`` pairs, ``basic_auth``);
    empty refuses to start: Flower can stop workers and revoke tasks.
    """

    address: str = "127.0.0.1"
    port: int = 5555
    #: serve under this path (``flower`` → ``/flower/``), e.g. behind HAProxy's ``/flower``
    url_prefix: str = ""
    auth: Literal["", "webserver", "basic"] = ""
    basic_auth: list[str] = field(default_factory=list, metadata=_SECRET)
    #: behind a proxy (HAProxy): take the client's address from ``X-Forwarded-For``
    proxied: bool = False


@dataclass(frozen=True)
class OperatorsSettings:
    """Defaults of operators, as Airflow's ``[operators]`` section."""

    #: ``deferrable=`` of the operators and sensors that can defer, when a DAG omits it
    default_deferrable: bool = False


@dataclass(frozen=True)
class Settings:
    """Every setting of one process, read once at start-up."""

    home: Path
    core: CoreSettings
    metastore: MetastoreSettings
    scheduler: SchedulerSettings
    celery: CelerySettings
    ha: HaSettings
    webserver: WebserverSettings
    logging: LoggingSettings
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    triggerer: TriggererSettings = field(default_factory=TriggererSettings)
    smtp: SmtpSettings = field(default_factory=SmtpSettings)
    flower: FlowerSettings = field(default_factory=FlowerSettings)
    operators: OperatorsSettings = field(default_factory=OperatorsSettings)

    def replace(self, section: str, **values: Any) -> Settings:
        """Return a copy with ``values`` changed in one section (for tests and CLI flags)."""
        current = getattr(self, section)
        return dataclasses.replace(self, **{section: dataclasses.replace(current, **values)})


SECTIONS: dict[str, type] = {
    "core": CoreSettings,
    "metastore": MetastoreSettings,
    "scheduler": SchedulerSettings,
    "celery": CelerySettings,
    "ha": HaSettings,
    "webserver": WebserverSettings,
    "logging": LoggingSettings,
    "metrics": MetricsSettings,
    "triggerer": TriggererSettings,
    "smtp": SmtpSettings,
    "flower": FlowerSettings,
    "operators": OperatorsSettings,
}


#: how to set each secret that a process refuses to start without (see require_secret)
HOW_TO_SET: dict[str, str] = {
    "core.fernet_key": (
        "set [core] fernet_key in tradewind.toml (or TRADEWIND__CORE__FERNET_KEY); generate "
        "one with: python -c 'from cryptography.fernet import Fernet; "
        "print(Fernet.generate_key().decode())'"
    ),
    "webserver.secret_key": (
        "set [webserver] secret_key in tradewind.toml (or TRADEWIND__WEBSERVER__SECRET_KEY) "
        "to the same random string on every node, e.g. "
        "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
    ),
}


def require_secret(settings: Settings, name: str) -> str:
    """The value of the secret ``name`` (``section.key`` of :data:`HOW_TO_SET`).

    A process that needs a secret calls this when it starts, so that a missing one
    stops it with one line saying how to set it, instead of failing later in every
    request or task.

    :raises ConfigError: when the secret is empty.
    """
    section, key = name.split(".")
    value: str = getattr(getattr(settings, section), key)
    if not value:
        raise ConfigError(f"{name} is empty: {HOW_TO_SET[name]}")
    return value


def default_home(env: Mapping[str, str]) -> Path:
    """``$TRADEWIND_HOME``, or ``~/tradewind``."""
    raw = env.get("TRADEWIND_HOME") or str(Path(env.get("HOME", "~")).expanduser() / "tradewind")
    return Path(raw).expanduser().resolve()


def load_settings(
    env: Mapping[str, str] | None = None,
    *,
    home: Path | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> Settings:
    """Build the settings from defaults, ``tradewind.toml``, the environment and ``overrides``.

    :param env: the environment to read; ``os.environ`` when omitted.
    :param overrides: ``{section: {key: value}}`` applied last (tests, CLI flags).
    :raises ConfigError: naming the key when a value is malformed or unknown.
    """
    env = os.environ if env is None else env
    home = (home or default_home(env)).resolve()
    raw: dict[str, dict[str, Any]] = {name: {} for name in SECTIONS}
    _merge(raw, _read_toml(home / "tradewind.toml"), origin="tradewind.toml")
    _merge(raw, _read_env(env), origin="environment")
    if overrides:
        _merge(raw, {s: dict(v) for s, v in overrides.items()}, origin="overrides")
    sections = {name: _build_section(name, cls, raw[name], home) for name, cls in SECTIONS.items()}
    return Settings(home=home, **sections)


def _read_toml(path: Path) -> dict[str, dict[str, Any]]:
    if not path.exists():
        return {}
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    for section, values in data.items():
        if not isinstance(values, dict):
            raise ConfigError(f"{path}: '{section}' must be a [section] table")
    return data


def _read_env(env: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX):
            continue
        parts = name[len(ENV_PREFIX) :].lower().split("__")
        if len(parts) != 2 or not all(parts):
            raise ConfigError(f"{name}: expected {ENV_PREFIX}<SECTION>__<KEY>")
        section, key = parts
        found.setdefault(section, {})[key] = _parse_env_value(value)
    return found


def _parse_env_value(value: str) -> Any:
    """JSON when it parses as JSON (lists, numbers, booleans), else the plain string."""
    try:
        return json.loads(value)
    except ValueError:
        return value


def _merge(
    raw: dict[str, dict[str, Any]], new: Mapping[str, Mapping[str, Any]], *, origin: str
) -> None:
    for section, values in new.items():
        if section not in SECTIONS:
            raise ConfigError(
                f"{origin}: unknown section '{section}' (known: {', '.join(SECTIONS)})"
            )
        for key, value in values.items():
            base = _indirect_base(key)
            # a plain value replaces an earlier _file/_cmd and vice versa
            for variant in (base, f"{base}_file", f"{base}_cmd"):
                raw[section].pop(variant, None)
            raw[section][key] = value


def _indirect_base(key: str) -> str:
    for suffix in ("_file", "_cmd"):
        if key.endswith(suffix):
            return key[: -len(suffix)]
    return key


def _build_section(name: str, cls: type, values: dict[str, Any], home: Path) -> Any:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        base = _indirect_base(key)
        if base not in fields or (base == key and key not in fields):
            raise ConfigError(f"{name}.{key}: unknown setting (known: {', '.join(fields)})")
        if key.endswith("_file"):
            value = _read_secret_file(f"{name}.{key}", value)
        elif key.endswith("_cmd"):
            value = _run_secret_cmd(f"{name}.{key}", value)
        kwargs[base] = _coerce(f"{name}.{base}", hints[base], value)
    _apply_home_defaults(name, kwargs, home)
    return cls(**kwargs)


def _apply_home_defaults(section: str, kwargs: dict[str, Any], home: Path) -> None:
    """Paths are relative to ``$TRADEWIND_HOME``; the default metastore lives there too."""
    if section == "core":
        kwargs["dags_folder"] = home / kwargs.get("dags_folder", Path("dags"))
        kwargs["plugins_folder"] = home / kwargs.get("plugins_folder", Path("plugins"))
        if not kwargs.get("hostname"):
            kwargs["hostname"] = os.uname().nodename
    elif section == "logging":
        kwargs["base_log_folder"] = home / kwargs.get("base_log_folder", Path("logs"))
    elif section == "metrics":
        kwargs["multiproc_dir"] = home / kwargs.get("multiproc_dir", Path("metrics"))
    elif section == "metastore" and not kwargs.get("url"):
        kwargs["url"] = f"sqlite:///{home / 'tradewind.db'}"


def _read_secret_file(key: str, path: Any) -> str:
    try:
        return Path(str(path)).expanduser().read_text().strip()
    except OSError as exc:
        raise ConfigError(f"{key}: cannot read {path}: {exc.strerror}") from exc


def _run_secret_cmd(key: str, command: Any) -> str:
    try:
        done = subprocess.run(
            str(command), shell=True, capture_output=True, text=True, timeout=30, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise ConfigError(f"{key}: command '{command}' did not finish in 30 s") from exc
    if done.returncode != 0:
        detail = done.stderr.strip().splitlines()[-1:] or ["no output"]
        raise ConfigError(f"{key}: command '{command}' exited {done.returncode}: {detail[0]}")
    return done.stdout.strip()


def _coerce(key: str, hint: Any, value: Any) -> Any:
    origin = typing.get_origin(hint)
    if origin is Literal:
        choices = typing.get_args(hint)
        if value not in choices:
            raise ConfigError(f"{key}: {value!r} is not one of {', '.join(map(str, choices))}")
        return value
    if origin in (types.UnionType, typing.Union):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return None if value is None else _coerce(key, args[0], value)
    if origin is list:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        (item,) = typing.get_args(hint)
        return [_coerce(key, item, v) for v in value]
    return _coerce_scalar(key, hint, value)


def _coerce_scalar(key: str, hint: Any, value: Any) -> Any:
    if hint is bool:
        if isinstance(value, bool):
            return value
        lowered = str(value).strip().lower()
        if lowered in ("true", "1", "yes", "on"):
            return True
        if lowered in ("false", "0", "no", "off"):
            return False
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if hint in (int, float):
        if isinstance(value, bool):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        try:
            number = hint(value)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{key}: expected a number, got {value!r}") from exc
        if number < 0:
            raise ConfigError(f"{key}: must not be negative, got {value!r}")
        return number
    if hint is Path:
        return Path(str(value)).expanduser()
    if hint is str:
        if not isinstance(value, str | int | float):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return str(value)
    raise ConfigError(f"{key}: unsupported setting type {hint!r}")  # pragma: no cover


def effective_settings(settings: Settings, *, mask: bool = True) -> dict[str, dict[str, Any]]:
    """Every setting as plain data, secrets masked (``tradewind config show``)."""
    out: dict[str, dict[str, Any]] = {"core": {"home": str(settings.home)}}
    for name in SECTIONS:
        section = getattr(settings, name)
        values = out.setdefault(name, {})
        for f in dataclasses.fields(section):
            value = getattr(section, f.name)
            if isinstance(value, Path):
                value = str(value)
            if mask and f.metadata.get("secret"):
                value = _mask(value)
            values[f.name] = value
    return out


def _mask(value: Any) -> Any:
    if isinstance(value, list):
        return [_mask(v) for v in value]
    if not value:
        return value
    text = str(value)
    if "://" in text:
        parts = urlsplit(text)
        if parts.password:
            netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
            return urlunsplit(parts._replace(netloc=netloc))
        return text
    return "***"
