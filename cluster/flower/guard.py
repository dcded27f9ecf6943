"""Who may use Flower when it sits behind the webserver's users (``flower.auth = webserver``).

Flower can shut workers down, resize their pools and revoke tasks, so only the roles
that operate the cluster may use it: :data:`ROLES` (Admin, Op), as on the webserver.
Every request carries HTTP basic credentials (a browser asks once and resends them);
they are checked against the ``user`` table with the webserver's own rules (scrypt,
the account lockout after five wrong passwords, an address throttle) and a success
is remembered for a few seconds (:class:`~cluster.web.credentials.CredentialCache`),
so the browser's dozens of requests per page cost one scrypt check.

Because a browser resends basic credentials to any page that asks, a request that may
change something (anything but GET, HEAD and OPTIONS) must come from Flower's own pages:
a cross-site one is refused, as Flower does for its own basic auth.

The guard knows nothing of Tornado: it judges a :class:`Request` and answers with a
:class:`Refusal` or ``None``, so it is tested without a server.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

from sqlalchemy.orm import Session, sessionmaker

from cluster.metastore import users
from cluster.metastore.engine import transaction
from cluster.web.credentials import CredentialCache
from cluster.web.throttle import LoginThrottle

#: the webserver roles allowed into Flower
ROLES = frozenset({"Admin", "Op"})
#: methods that only read; anything else must come from the same site
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: paths anyone may read: HAProxy's health check (Flower answers "OK", nothing else)
PUBLIC_PATHS = frozenset({"/healthcheck"})
REALM = "Tradewind Flower"


@dataclass(frozen=True)
class Request:
    """What the guard needs of one HTTP request."""

    method: str
    path: str
    headers: Mapping[str, str]
    host: str
    remote_ip: str


@dataclass(frozen=True)
class Refusal:
    """An answer instead of Flower's: 401 asks for credentials, 403 and 429 do not."""

    status: int
    message: str

    @property
    def headers(self) -> dict[str, str]:
        if self.status == 401:
            return {"WWW-Authenticate": f'Basic realm="{REALM}"'}
        return {}


ASK = Refusal(401, "sign in with the user name and password of a webserver Admin or Op")


class UserGuard:
    """Basic auth against the webserver's users; only :data:`ROLES` get in.

    :param url_prefix: Flower's path prefix (``flower``), so the public paths are found.
    :param clock: wall time (account lockouts are stored as datetimes).
    """

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        *,
        url_prefix: str = "",
        throttle: LoginThrottle | None = None,
        credentials: CredentialCache[str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._sessions = session_factory
        prefix = "/" + url_prefix.strip("/") if url_prefix.strip("/") else ""
        self._public = {prefix + path for path in PUBLIC_PATHS}
        self._throttle = throttle or LoginThrottle()
        self._credentials = credentials or CredentialCache()
        self._clock = clock

    def refuse(self, request: Request) -> Refusal | None:
        """``None`` when ``request`` may go on to Flower, else the answer to give."""
        if request.path in self._public and request.method in SAFE_METHODS:
            return None
        if request.method not in SAFE_METHODS and cross_site(request):
            return Refusal(403, "cross-site request refused")
        credentials = basic_credentials(request.headers.get("Authorization", ""))
        if credentials is None:
            return ASK
        return self._check(request.remote_ip, *credentials)

    def _check(self, address: str, username: str, password: str) -> Refusal | None:
        now = datetime.fromtimestamp(self._clock(), UTC)
        if self._throttle.retry_after(address) > 0:
            return Refusal(429, "too many failed sign-ins from this address: try again later")
        key = self._credentials.key("basic", username, password)
        role = self._credentials.lookup(key, now)
        if role is None:

            def work(session: Session) -> users.UserRecord | None:
                return users.authenticate(username, password, session=session, now=now)

            record = transaction(self._sessions, work, retries=2)
            if record is None:
                self._throttle.record_failure(address)
                return ASK
            role = record.role
            self._credentials.remember(key, role, now)
        if role not in ROLES:
            return Refusal(403, f"the role {role} may not use Flower (Admin or Op may)")
        return None


def basic_credentials(header: str) -> tuple[str, str] | None:
    """``(username, password)`` of an ``Authorization: Basic`` header, else ``None``."""
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, sep, password = decoded.partition(":")
    if not sep or not username:
        return None
    return username, password


def cross_site(request: Request) -> bool:
    """Whether the browser says the request comes from another site (Fetch Metadata,
    else ``Origin``); a client that sends neither (curl) is not a browser."""
    site = request.headers.get("Sec-Fetch-Site")
    if site:
        return site not in ("same-origin", "none")
    origin = request.headers.get("Origin")
    return bool(origin) and urlsplit(origin).netloc != request.host
