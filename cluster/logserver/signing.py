"""Signing a log path with the cluster secret, with an expiry, and checking a signature.

A webserver asks a worker for a try's log by sending the path, an expiry time and an
HMAC-SHA256 of both keyed with ``webserver.secret_key``, the secret every node of the
cluster shares. The worker serves only paths signed within their expiry, so its port
does not hand logs to anyone who can reach it, and a leaked URL stops working after
``logging.log_url_expiry`` seconds. The read offset is not signed: whoever may read
a file may read any part of it.

Pure standard library, so the web layer can import it without the server.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote

from cluster.errors import ConfigError, ExpiredSignature, SignatureError

#: keeps these signatures apart from anything else signed with the same secret
DOMAIN = b"tradewind-log-v1"
#: the query parameters of a signed request
EXPIRES = "expires"
SIGNATURE = "signature"
#: where the log server serves files; the signed path is relative to the log folder
ROUTE = "/log/"


@dataclass(frozen=True)
class SignedPath:
    """A relative log path, when its signature stops being valid, and the signature."""

    path: str
    expires: int
    signature: str

    def query(self) -> dict[str, str]:
        return {EXPIRES: str(self.expires), SIGNATURE: self.signature}

    def url(self, base_url: str, *, offset: int = 0) -> str:
        """``base_url`` (``http://host:8793``) with the route, path and query."""
        query = f"{EXPIRES}={self.expires}&{SIGNATURE}={self.signature}"
        if offset:
            query += f"&offset={offset}"
        return f"{base_url.rstrip('/')}{ROUTE}{quote(self.path)}?{query}"


def _mac(key: str, path: str, expires: int) -> str:
    if not key:
        raise ConfigError(
            "webserver.secret_key is empty: set the same secret on every node to fetch logs"
        )
    message = DOMAIN + b"\n" + path.encode() + b"\n" + str(expires).encode()
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def sign(path: str, *, key: str, now: float, ttl: float) -> SignedPath:
    """Sign ``path`` (relative to the log folder) for ``ttl`` seconds from ``now``.

    :raises ConfigError: when ``key`` is empty.
    """
    expires = math.ceil(now + ttl)
    return SignedPath(path, expires, _mac(key, path, expires))


def verify(path: str, query: Mapping[str, str], *, key: str, now: float) -> None:
    """Check that ``query`` carries a valid, unexpired signature of ``path``.

    :raises SignatureError: missing or malformed parameters, or a wrong signature.
    :raises ExpiredSignature: a right signature past its expiry.
    """
    raw_expires = query.get(EXPIRES)
    signature = query.get(SIGNATURE)
    if not raw_expires or not signature:
        raise SignatureError("the request is not signed")
    try:
        expires = int(raw_expires)
    except ValueError as exc:
        raise SignatureError("the expiry is not a number") from exc
    if not hmac.compare_digest(_mac(key, path, expires), signature):
        raise SignatureError("the signature does not match")
    if now > expires:
        raise ExpiredSignature(f"the signature expired {now - expires:.0f} s ago")
