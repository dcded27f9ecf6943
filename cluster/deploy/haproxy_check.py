"""Does an existing HAProxy config serve the inventory's masters, with health checks?

:func:`check_config` compares a parsed config (:mod:`cluster.deploy.haproxy_parse`)
with the webservers the inventory expects and returns one plain sentence per problem:
a master missing or at another address, a server without ``check``, a server the
inventory does not know, a backend without the ``/health`` check or that no frontend
uses. An empty list means the config is fine. It is pure: no files, no pyhaproxy.
"""

from __future__ import annotations

from collections.abc import Sequence

from cluster.deploy.haproxy import BACKEND, HEALTH_PATH, Webserver
from cluster.deploy.haproxy_parse import ParsedConfig, Section, ServerEntry


def check_config(
    parsed: ParsedConfig, expected: Sequence[Webserver], *, backend: str = BACKEND
) -> list[str]:
    """The problems of ``parsed`` for the webservers ``expected`` (see the module doc)."""
    section = parsed.backend(backend)
    if section is None:
        known = ", ".join(s.name for s in (*parsed.backends, *parsed.listens)) or "none"
        return [f"no backend {backend!r} (backends in the file: {known})"]
    problems: list[str] = []
    if not parsed.routes_to(backend):
        problems.append(f"no frontend sends traffic to backend {backend!r} (default_backend)")
    problems += _health_check_problems(section, parsed.defaults)
    problems += _malformed_servers(section)
    by_name = {server.name: server for server in section.servers}
    default_flags = _default_server_flags(section, parsed.defaults)
    for webserver in expected:
        found = by_name.get(webserver.name)
        problems += _server_problems(webserver, found, default_flags, backend)
    known_names = {webserver.name for webserver in expected}
    for server in section.servers:
        if server.name not in known_names:
            problems.append(
                f"server {server.name} ({server.endpoint}) is not a master in the inventory"
            )
    return problems


def _health_check_problems(section: Section, defaults: Sequence[Section]) -> list[str]:
    """The backend (or the defaults) must check ``GET /health`` over HTTP."""
    httpchk = [line for s in (*defaults, section) for line in s.lines_starting("option httpchk")]
    sends_health = [
        line for s in (*defaults, section) for line in s.lines_starting("http-check send")
    ]
    checked = [line for line in httpchk + sends_health if f" {HEALTH_PATH}" in f"{line} "]
    if not checked:
        return [
            f"backend {section.name!r} does not check 'GET {HEALTH_PATH}' "
            f"(add 'option httpchk GET {HEALTH_PATH}'): a webserver without its metastore "
            "would stay in rotation"
        ]
    return []


def _malformed_servers(section: Section) -> list[str]:
    """``server`` lines pyhaproxy could not read as NAME ADDRESS:PORT."""
    return [
        f"backend {section.name!r}: cannot read '{line}' (expected 'server NAME ADDRESS:PORT check')"
        for line in section.lines_starting("server")
    ]


def _default_server_flags(section: Section, defaults: Sequence[Section]) -> set[str]:
    flags: set[str] = set()
    for s in (*defaults, section):
        for line in s.lines_starting("default-server"):
            flags.update(line.split()[1:])
    return flags


def _server_problems(
    webserver: Webserver, found: ServerEntry | None, default_flags: set[str], backend: str
) -> list[str]:
    if found is None:
        return [
            f"master {webserver.name} ({webserver.endpoint}) is not a server of backend {backend!r}"
        ]
    problems = []
    if (found.address, found.port) != (webserver.address, str(webserver.port)):
        problems.append(
            f"server {webserver.name} points to {found.endpoint}, "
            f"the inventory says {webserver.endpoint}"
        )
    flags = set(found.flags) | default_flags
    if "check" not in flags or "no-check" in found.flags:
        problems.append(f"server {webserver.name} has no health check (add 'check')")
    if "disabled" in found.flags:
        problems.append(f"server {webserver.name} is disabled")
    return problems
