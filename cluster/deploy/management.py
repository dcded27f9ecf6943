"""A small client of RabbitMQ's management HTTP API (the ``rabbitmq_management`` plugin).

AMQP alone tells how many messages a queue holds ready and how many consumers it has,
but not how many are delivered and not yet acknowledged, nor which cluster nodes are
down; the management API tells all of it. It is optional: without the plugin (or
without a user tagged ``monitoring``), :mod:`cluster.deploy.rabbitmq` falls back to
AMQP and says what it could not read.

The API is reached at ``celery.management_urls`` (``http://user:pass@host:15672``, one
per node), or, when that is empty, at URLs derived from ``celery.broker_urls``: the
same host and credentials on port :data:`DEFAULT_PORT`. Every failure becomes a
:class:`~cluster.errors.BrokerError` naming the URL without its password.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from cluster.errors import BrokerError

#: the management plugin's default port
DEFAULT_PORT = 15672
#: seconds one HTTP request may take
TIMEOUT = 5.0


def derive_management_urls(broker_urls: Sequence[str], port: int = DEFAULT_PORT) -> list[str]:
    """``amqp://u:p@host:5672/vh`` → ``http://u:p@host:15672``, one per broker URL."""
    derived = []
    for url in broker_urls:
        parts = urlsplit(url)
        credentials = parts.netloc.rpartition("@")[0]
        auth = f"{credentials}@" if credentials else ""
        derived.append(f"http://{auth}{parts.hostname or 'localhost'}:{port}")
    return derived


def safe_url(url: str) -> str:
    """``url`` without its user and password, for output and messages."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


class ManagementApi:
    """The management API of one node, at ``base_url`` (credentials in the URL).

    :param timeout: seconds one request may take.
    """

    def __init__(self, base_url: str, *, timeout: float = TIMEOUT) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise BrokerError(
                f"{safe_url(base_url)}: a management URL must look like http://user:pass@host:15672"
            )
        port = f":{parts.port}" if parts.port else ""
        self.url = f"{parts.scheme}://{parts.hostname}{port}{parts.path.rstrip('/')}"
        user, password = unquote(parts.username or "guest"), unquote(parts.password or "guest")
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        self._authorization = f"Basic {token}"
        self._timeout = timeout

    def overview(self) -> dict[str, Any]:
        """``/api/overview``: its ``node`` is the name of the node that answered."""
        return self._get_object("/api/overview")

    def nodes(self) -> list[dict[str, Any]]:
        """``/api/nodes``: every cluster member with ``name`` and ``running``."""
        found = self._request("GET", "/api/nodes")
        return [node for node in found if isinstance(node, dict)] if isinstance(found, list) else []

    def queue(self, vhost: str, name: str) -> dict[str, Any] | None:
        """One queue's statistics; ``None`` when it does not exist."""
        try:
            return self._get_object(f"/api/queues/{_segment(vhost)}/{_segment(name)}")
        except _NotFound:
            return None

    def policy(self, vhost: str, name: str) -> dict[str, Any] | None:
        """One policy as stored; ``None`` when it does not exist."""
        try:
            return self._get_object(f"/api/policies/{_segment(vhost)}/{_segment(name)}")
        except _NotFound:
            return None

    def put_policy(self, vhost: str, name: str, body: dict[str, Any]) -> None:
        """Create or replace a policy (needs a user tagged ``policymaker`` or ``administrator``)."""
        self._request("PUT", f"/api/policies/{_segment(vhost)}/{_segment(name)}", body)

    def _get_object(self, path: str) -> dict[str, Any]:
        found = self._request("GET", path)
        if not isinstance(found, dict):
            raise BrokerError(f"{self.url}{path}: unexpected answer {str(found)[:100]!r}")
        return found

    def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Authorization", self._authorization)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                raise _NotFound(path) from exc
            raise BrokerError(_http_refusal(self.url, exc.code)) from exc
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise BrokerError(f"cannot reach the management API at {self.url}: {reason}") from exc
        try:
            return json.loads(raw) if raw else None
        except ValueError as exc:
            raise BrokerError(f"{self.url}{path}: the answer is not JSON") from exc


class _NotFound(Exception):
    """404 from the API: the object does not exist (turned into ``None`` by callers)."""


def _segment(value: str) -> str:
    return quote(value, safe="")


def _http_refusal(url: str, code: int) -> str:
    if code in (401, 403):
        return (
            f"the management API at {url} refused the user ({code}): it needs the "
            "'monitoring' tag to read and 'policymaker' to set policies"
        )
    return f"the management API at {url} answered HTTP {code}"
