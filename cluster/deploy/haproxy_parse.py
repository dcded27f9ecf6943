"""Reading an existing ``haproxy.cfg`` with pyhaproxy into a small typed snapshot.

pyhaproxy parses the sections Tradewind's configs use (global, defaults, frontend,
backend, listen, userlist) and refuses others (``resolvers``, ``peers``, ...) and
binds without a host (``bind :8080``; write ``*:8080``). Its objects are untyped and
keep a server's flags as one string, so :func:`parse_config` turns them into frozen
snapshots that the checks (:mod:`cluster.deploy.haproxy_check`) work on without
pyhaproxy.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyhaproxy import config as pyconfig
from pyhaproxy.parse import Parser
from pyhaproxy.pegnode import ParseError

from cluster.errors import ConfigError


@dataclass(frozen=True)
class ServerEntry:
    """One ``server NAME ADDRESS:PORT FLAGS...`` line."""

    name: str
    address: str
    port: str
    flags: tuple[str, ...]

    @property
    def endpoint(self) -> str:
        return f"{self.address}:{self.port}"


@dataclass(frozen=True)
class Section:
    """A defaults, backend or listen section: its servers and its other lines.

    :param lines: every other line as ``keyword value`` text (``option httpchk GET
        /health``, ``default-server inter 500ms``), whitespace collapsed.
    """

    kind: str
    name: str
    servers: tuple[ServerEntry, ...]
    lines: tuple[str, ...]
    #: backends this section sends traffic to (``default_backend``, ``use_backend``)
    routes: tuple[str, ...] = ()

    def has_line(self, prefix: str) -> bool:
        return any(line == prefix or line.startswith(prefix + " ") for line in self.lines)

    def lines_starting(self, prefix: str) -> list[str]:
        return [line for line in self.lines if line == prefix or line.startswith(prefix + " ")]


@dataclass(frozen=True)
class ParsedConfig:
    """The parts of a config the checks and edits look at."""

    defaults: tuple[Section, ...]
    frontends: tuple[Section, ...]
    backends: tuple[Section, ...]
    listens: tuple[Section, ...]

    def backend(self, name: str) -> Section | None:
        """The ``backend`` (or ``listen``) section called ``name``."""
        for section in (*self.backends, *self.listens):
            if section.name == name:
                return section
        return None

    def routes_to(self, name: str) -> bool:
        """Whether some frontend or listen section sends traffic to backend ``name``."""
        return any(name in section.routes for section in (*self.frontends, *self.listens))


def read_config(path: Path) -> ParsedConfig:
    """Parse the config file at ``path``.

    :raises ConfigError: the file is missing, unreadable or not parseable.
    """
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"{path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} cannot be read: {exc}") from exc
    return parse_config(text, source=str(path))


def parse_config(text: str, *, source: str = "haproxy.cfg") -> ParsedConfig:
    """Parse config ``text`` with pyhaproxy.

    :raises ConfigError: pyhaproxy refused it (the message names the line), or it is
        empty.
    """
    if not text.strip():
        # pyhaproxy would silently read /etc/haproxy/haproxy.cfg for an empty string
        raise ConfigError(f"{source} is empty")
    if not text.endswith("\n"):
        text += "\n"
    try:
        configuration = Parser(filepath=None, filestring=text).build_configuration()
    except ParseError as exc:
        first = str(exc).splitlines()[0] if str(exc) else "syntax error"
        raise ConfigError(f"{source}: pyhaproxy cannot parse it: {first}") from exc
    except Exception as exc:  # pyhaproxy raises bare Exception for a bind without host
        raise ConfigError(
            f"{source}: pyhaproxy cannot parse it: {exc} (write binds as HOST:PORT, e.g. *:8080)"
        ) from exc
    return ParsedConfig(
        defaults=tuple(_section("defaults", s) for s in configuration.defaults),
        frontends=tuple(_section("frontend", s) for s in configuration.frontends),
        backends=tuple(_section("backend", s) for s in configuration.backends),
        listens=tuple(_section("listen", s) for s in configuration.listens),
    )


def _section(kind: str, section: Any) -> Section:
    servers: list[ServerEntry] = []
    lines: list[str] = []
    routes: list[str] = []
    for line in section.config_block:
        if isinstance(line, pyconfig.Server):
            flags = tuple(" ".join(line.attributes).split())
            servers.append(ServerEntry(line.name, line.host, line.port, flags))
        elif isinstance(line, pyconfig.UseBackend):
            routes.append(line.backend_name)
        elif isinstance(line, pyconfig.Option):
            lines.append(_words("option", line.keyword, line.value))
        elif isinstance(line, pyconfig.Config):
            lines.append(_words(line.keyword, line.value))
    return Section(
        kind=kind,
        name=str(section.name or ""),
        servers=tuple(servers),
        lines=tuple(lines),
        routes=tuple(routes),
    )


def _words(*parts: str) -> str:
    return " ".join(" ".join(part.split()) for part in parts if part and part.strip())
