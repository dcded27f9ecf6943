"""PyMySQL connections that share one TLS context per process.

Without TLS options in ``metastore.url`` PyMySQL (1.1+) tries TLS opportunistically
("preferred": encrypt if the server offers it, verify nothing) and builds a fresh
``ssl.SSLContext`` for every connection, loading the system's whole CA bundle into it:
10 to 50 ms of CPU per connection, paid by every pool process and every forked try.
That context never verifies anything, so one per process serves every connection.
A URL with ``ssl_ca``/``ssl_cert``/``ssl_verify_*`` options keeps PyMySQL's own,
verifying context per connection.

This overrides one private method of PyMySQL's ``Connection``; the integration test
of the MariaDB engine checks that two connections share the context, so a PyMySQL
release that renames it fails there rather than silently slowing down.
"""

from __future__ import annotations

import ssl
import threading
from typing import Any

import pymysql.connections

_lock = threading.Lock()
_preferred: ssl.SSLContext | None = None


class SharedContextConnection(pymysql.connections.Connection):
    """PyMySQL's connection, with the opportunistic-TLS context built once per process."""

    def _create_ssl_ctx(self, sslp: Any) -> ssl.SSLContext:
        if sslp:  # options from the URL: PyMySQL's own, verifying context
            return super()._create_ssl_ctx(sslp)
        global _preferred
        with _lock:
            if _preferred is None:
                _preferred = super()._create_ssl_ctx(sslp)
            return _preferred


def connect(dialect: Any, record: Any, cargs: Any, cparams: Any) -> SharedContextConnection:
    """SQLAlchemy's ``do_connect`` hook: the dialect's arguments, our connection class."""
    return SharedContextConnection(*cargs, **cparams)
