"""The HAProxy configuration that puts every master's webserver behind one address.

:func:`webservers` reads the backends from the inventory (each master's address, port
8080 unless its host variable ``tradewind_webserver_port`` says otherwise) and
:func:`render_config` writes the whole configuration for them. The text is generated
here rather than through pyhaproxy's renderer because that renderer drops comments and
reorders sections; pyhaproxy parses what we write (:mod:`cluster.deploy.haproxy_parse`)
and ``haproxy -c`` validates it (:mod:`cluster.deploy.haproxy_validate`).

Why the settings are what they are:

* ``option httpchk GET /health`` with ``http-check expect status 200``: a webserver
  that cannot reach the metastore answers 503 and is taken out of rotation;
* ``inter 500ms fall 2 rise 1``: out within about a second, back after one good check;
  ``timeout check`` bounds a check against a frozen server;
* ``retries 2`` with ``option redispatch`` and ``retry-on``: a request whose connection
  failed is sent again, the last time to another server, so a killed webserver costs no
  request. Only GET and HEAD are retried after they reached a server (an empty response
  or a timeout): a POST that may have been processed is never sent twice;
* the stats page needs a password, which the caller must supply: there is no default;
* Flower (``tradewind flower`` on the masters, when given a port) is served under
  :data:`FLOWER_PATH` on the same frontend, balanced by client address: each Flower
  keeps the task events it saw since it started, so one user keeps seeing one of them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from cluster.deploy.topology import Topology
from cluster.errors import ConfigError

#: the port every webserver listens on unless the host variable says otherwise
DEFAULT_WEBSERVER_PORT = 8080
#: the inventory variable (host, group or ``all``) the Ansible roles also read
PORT_VAR = "tradewind_webserver_port"
BACKEND = "tradewind_webservers"
FRONTEND = "tradewind_web"
#: where the health checks go; ``/health`` answers 503 without a metastore
HEALTH_PATH = "/health"
#: the path (and ``flower.url_prefix``) under which HAProxy serves the masters' Flower
FLOWER_PATH = "flower"
FLOWER_BACKEND = "tradewind_flower"
#: HAProxy names: letters, digits and ``-_.:`` only
_NAME = re.compile(r"^[A-Za-z0-9_.:-]+$")
_HOST = re.compile(r"^(\*|[A-Za-z0-9_.-]+)$")
#: characters HAProxy's config parser treats specially, or that end a word
_UNSAFE_SECRET = re.compile(r"[\s\"'\\#]")


@dataclass(frozen=True)
class Webserver:
    """One backend server: a master's webserver."""

    name: str
    address: str
    port: int

    @property
    def endpoint(self) -> str:
        return f"{self.address}:{self.port}"


@dataclass(frozen=True)
class HAProxyOptions:
    """Everything about the rendered config that is not in the inventory.

    :param stats_password: required; the stats page shows every server and, with the
        admin socket, can disable them.
    :param bind: ``HOST:PORT`` of the frontend (``*`` for every address).
    :param stats_bind: ``HOST:PORT`` of the stats page.
    :param stats_socket: path of the admin socket (``show stat``, enable/disable).
    """

    stats_password: str
    stats_user: str = "admin"
    bind: str = "*:8080"
    stats_bind: str = "*:1936"
    stats_socket: str = "/run/haproxy/admin.sock"
    backend: str = BACKEND
    frontend: str = FRONTEND
    #: each master's ``flower.port``; ``None``: no Flower behind HAProxy
    flower_port: int | None = None

    def validate(self) -> None:
        """:raises ConfigError: an empty or unsafe password, a bad bind or name."""
        if not self.stats_password:
            raise ConfigError("the HAProxy stats page needs a password: give --stats-password")
        for label, secret in (
            ("stats password", self.stats_password),
            ("stats user", self.stats_user),
        ):
            if _UNSAFE_SECRET.search(secret) or (label == "stats user" and ":" in secret):
                raise ConfigError(
                    f"the {label} may not contain whitespace, quotes, backslashes or '#'"
                    + (" or ':'" if label == "stats user" else "")
                )
        for label, bind in (("bind", self.bind), ("stats bind", self.stats_bind)):
            split_endpoint(bind, what=label)
        for label, name in (("backend", self.backend), ("frontend", self.frontend)):
            check_name(name, what=f"{label} name")
        if any(c.isspace() for c in self.stats_socket) or not self.stats_socket.startswith("/"):
            raise ConfigError(f"stats socket {self.stats_socket!r}: expected an absolute path")


def check_name(name: str, *, what: str) -> str:
    """``name`` if HAProxy accepts it as a server, backend or frontend name.

    :raises ConfigError: naming the bad value.
    """
    if not _NAME.match(name):
        raise ConfigError(f"{what} {name!r}: use letters, digits and '-', '_', '.', ':' only")
    return name


def split_endpoint(endpoint: str, *, what: str) -> tuple[str, int]:
    """``HOST:PORT`` → ``(host, port)``; ``*`` stands for every address.

    IPv6 addresses are refused: pyhaproxy cannot parse them back.

    :raises ConfigError: for anything else.
    """
    host, sep, port = endpoint.rpartition(":")
    if not sep or not _HOST.match(host) or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"{what} {endpoint!r}: expected HOST:PORT, e.g. *:8080 or 10.0.0.1:8080")
    return host, int(port)


def webservers(
    topology: Topology, *, default_port: int = DEFAULT_WEBSERVER_PORT
) -> list[Webserver]:
    """The webserver of every master in the inventory, in inventory order.

    :raises ConfigError: no masters, or a master whose name or ``tradewind_webserver_port`` HAProxy
        cannot use.
    """
    masters = topology.with_role("master")
    if not masters:
        raise ConfigError("the inventory has no hosts in the 'master' group: nothing to balance")
    servers = []
    for node in masters:
        port = node.vars.get(PORT_VAR, default_port)
        if isinstance(port, bool) or not str(port).isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(f"master {node.name}: {PORT_VAR} {port!r} is not a TCP port")
        check_name(node.name, what="master name")
        split_endpoint(f"{node.address}:{port}", what=f"master {node.name} address")
        servers.append(Webserver(name=node.name, address=node.address, port=int(port)))
    return servers


def server_line(server: Webserver) -> str:
    """The backend's ``server`` line; checks and their timing come from ``default-server``."""
    return f"server {check_name(server.name, what='server name')} {server.endpoint} check"


def render_config(servers: Sequence[Webserver], options: HAProxyOptions) -> str:
    """The whole ``haproxy.cfg`` for ``servers``.

    :raises ConfigError: invalid options, no servers or two servers of the same name.
    """
    options.validate()
    if not servers:
        raise ConfigError("no webservers to balance: the inventory needs at least one master")
    names = [s.name for s in servers]
    if len(set(names)) != len(names):
        raise ConfigError(f"server names must be unique, got {', '.join(names)}")
    sections = [
        _HEADER,
        _global(options),
        _DEFAULTS,
        _frontend(options),
        _backend(servers, options),
        *([_flower_backend(servers, options.flower_port)] if options.flower_port else []),
        _stats(options),
    ]
    return "\n".join(sections)


_HEADER = """\
# HAProxy in front of Tradewind's webservers; generated by `tradewind haproxy render`.
#
# Webservers are stateless (sessions are cookies signed with the cluster-wide
# secret_key), so any request may go to any server. `GET /health` answers 200 only
# when that webserver reaches the metastore: a server that cannot is taken out within
# about a second and put back after one good check. A request whose connection failed
# is sent again, the last time to another server, so a killed webserver costs no
# request; only GET and HEAD are retried once they reached a server.
"""


def _global(options: HAProxyOptions) -> str:
    return f"""\
global
    log stdout format raw local0 info
    maxconn 4096
    stats socket {options.stats_socket} mode 660 level admin
    stats timeout 30s
"""


_DEFAULTS = """\
defaults
    mode http
    log global
    option httplog
    option dontlognull
    option forwardfor
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    timeout check 2s
    retries 2
    option redispatch
    retry-on conn-failure empty-response response-timeout
"""


def _frontend(options: HAProxyOptions) -> str:
    flower = ""
    if options.flower_port:
        flower = (
            f"    acl flower path_beg /{FLOWER_PATH}/\n    use_backend {FLOWER_BACKEND} if flower\n"
        )
    return f"""\
frontend {options.frontend}
    bind {options.bind}
{flower}    default_backend {options.backend}
"""


def _flower_backend(servers: Sequence[Webserver], port: int) -> str:
    """Every master's Flower, checked at its public health check."""
    lines = "".join(f"    {server_line(Webserver(s.name, s.address, port))}\n" for s in servers)
    return f"""\
backend {FLOWER_BACKEND}
    balance source
    option httpchk GET /{FLOWER_PATH}/healthcheck
    http-check expect status 200
    http-request disable-l7-retry if !METH_GET
    default-server inter 2s fall 2 rise 1
{lines}"""


def _backend(servers: Sequence[Webserver], options: HAProxyOptions) -> str:
    lines = "".join(f"    {server_line(server)}\n" for server in servers)
    return f"""\
backend {options.backend}
    balance roundrobin
    option httpchk GET {HEALTH_PATH}
    http-check expect status 200
    http-request disable-l7-retry if !METH_GET
    default-server inter 500ms fall 2 rise 1 maxconn 256
{lines}"""


def _stats(options: HAProxyOptions) -> str:
    return f"""\
listen stats
    bind {options.stats_bind}
    stats enable
    stats uri /
    stats refresh 5s
    stats show-legends
    stats auth {options.stats_user}:{options.stats_password}
"""
