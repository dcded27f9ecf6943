"""PyMySQL connections that share one TLS context per process and skip idle rollbacks.

Without TLS options in ``metastore.url`` PyMySQL (1.1+) tries TLS opportunistically
("preferred": encrypt if the server offers it, verify nothing) and builds a fresh
``ssl.SSLContext`` for every connection, loading the system's whole CA bundle into it:
10 to 50 ms of CPU per connection, paid by every pool process and every forked try.
That context never verifies anything, so one per process serves every connection.
A URL with ``ssl_ca``/``ssl_cert``/``ssl_verify_*`` options keeps PyMySQL's own,
verifying context per connection.

SQLAlchemy's pool rolls back every connection that comes back to it, even one whose
transaction has just committed (the ``Connection`` no longer has a transaction to
close, so the pool cannot tell), and PyMySQL sends that ``ROLLBACK`` to the server: a
round trip per transaction, a quarter of a chain task's statements. The connection
here knows whether anything went to the server since its last commit or rollback and
skips a rollback that has nothing to undo. (The server's own "in transaction" status
flag cannot say it: MariaDB leaves it clear after a plain ``SELECT``, whose metadata
locks only a rollback releases.)

This overrides one private method of PyMySQL's ``Connection``; the integration test
of the MariaDB engine checks that two connections share the context, so a PyMySQL
release that renames it fails there rather than silently slowing down.

The class derives from the PyMySQL module that SQLAlchemy's dialect loaded, which it
does for a MySQL URL only: a process on SQLite or PostgreSQL (every quick CLI call on
one machine) never imports PyMySQL and the ``cryptography`` modules its logins pull in.
"""

from __future__ import annotations

import functools
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # PyMySQL imports ssl itself; a process on SQLite never needs it
    import ssl

_lock = threading.Lock()
_preferred: ssl.SSLContext | None = None


@functools.cache
def shared_context_class(base: type) -> type:
    """PyMySQL's connection class ``base``, with the opportunistic-TLS context built once
    per process and no rollback sent when nothing happened since the transaction ended
    (one class per base, so ``isinstance`` checks hold)."""

    class SharedContextConnection(base):
        #: nothing was sent since the last commit or rollback (or since connecting)
        _ended = False

        def query(self, sql: Any, unbuffered: bool = False) -> int:
            self._ended = False
            return int(super().query(sql, unbuffered))

        def begin(self) -> None:
            self._ended = False
            super().begin()

        def commit(self) -> None:
            super().commit()
            self._ended = True

        def rollback(self) -> None:
            if self._ended:  # the pool's reset after a commit: nothing to undo
                return
            super().rollback()
            self._ended = True

        def _create_ssl_ctx(self, sslp: Any) -> ssl.SSLContext:
            if sslp:  # options from the URL: PyMySQL's own, verifying context
                context: ssl.SSLContext = super()._create_ssl_ctx(sslp)
                return context
            global _preferred
            with _lock:
                if _preferred is None:
                    _preferred = super()._create_ssl_ctx(sslp)
                return _preferred

    return SharedContextConnection


def connect(dialect: Any, record: Any, cargs: Any, cparams: Any) -> Any:
    """SQLAlchemy's ``do_connect`` hook: the dialect's arguments, our connection class."""
    return shared_context_class(dialect.loaded_dbapi.connections.Connection)(*cargs, **cparams)
