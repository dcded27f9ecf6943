"""Credentials this process checked a moment ago, so API clients do not pay each call.

An API client sends the same credentials with every call: with basic auth that is a
scrypt check (tens of milliseconds of CPU, deliberately) and a write of the login
time; with a bearer token, a transaction of its own with two selects. After one
successful check, the process remembers whom the credentials belong to for
:data:`TTL_SECONDS`.

What this costs and what it keeps:

- A change made elsewhere (``tradewind users`` on a master, another webserver) takes
  effect here within :data:`TTL_SECONDS`: a changed password, a revoked token, a
  deleted or deactivated user or a new role. Changes to users made through this
  webserver clear the whole cache when they commit. Token expiry is exact: an entry
  never outlives its token.
- Only successes are remembered: every wrong password still reaches the metastore,
  counts towards the account lockout and the address throttle.
- Neither passwords nor tokens are kept: entries are keyed by an HMAC under a random
  key made when the process starts.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Generic, TypeVar

#: how long a verified credential is trusted without asking the metastore again
TTL_SECONDS = 5.0
#: entries kept at most; the oldest go first
MAX_ENTRIES = 10_000

V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class _Entry(Generic[V]):
    value: V
    valid_until: datetime


class CredentialCache(Generic[V]):
    """Verified credentials → who they belong to (``V``), for a short time.

    Times are the caller's (the web application's injected clock), so tests move time
    instead of sleeping. Safe to share between threads.
    """

    def __init__(self, *, ttl: float = TTL_SECONDS, max_entries: int = MAX_ENTRIES) -> None:
        self.ttl = timedelta(seconds=ttl)
        self.max_entries = max_entries
        self._secret = secrets.token_bytes(32)
        self._entries: dict[bytes, _Entry[V]] = {}
        self._lock = threading.Lock()

    def key(self, kind: str, *parts: str) -> bytes:
        """The key of one credential: ``kind`` (``token``, ``basic``) and its parts."""
        message = "\0".join((kind, *parts)).encode("utf-8", "surrogatepass")
        return hmac.new(self._secret, message, hashlib.sha256).digest()

    def lookup(self, key: bytes, now: datetime) -> V | None:
        """Whom ``key`` was verified for, unless that was too long ago."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry.valid_until <= now:
                del self._entries[key]
                return None
            return entry.value

    def remember(
        self, key: bytes, value: V, now: datetime, *, expires_at: datetime | None = None
    ) -> None:
        """Trust ``key`` as ``value`` until ``now`` + TTL, or ``expires_at`` if sooner."""
        if self.ttl <= timedelta(0) or self.max_entries <= 0:
            return
        valid_until = now + self.ttl
        if expires_at is not None:
            valid_until = min(valid_until, expires_at)
        with self._lock:
            self._entries.pop(key, None)
            while len(self._entries) >= self.max_entries:
                del self._entries[next(iter(self._entries))]
            self._entries[key] = _Entry(value, valid_until)

    def forget_all(self) -> None:
        """Drop every entry: a user or token changed."""
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
