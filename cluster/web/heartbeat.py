"""A webserver process's ``component`` row, refreshed from a background thread.

``tradewind status`` and the cluster views list webservers from these rows; each
gunicorn worker runs one thread. A failed heartbeat (metastore down) is logged and
retried at the next beat: it must never take the worker down.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.orm import Session

from cluster.errors import TradewindError
from cluster.metastore.components import heartbeat_component
from cluster.metastore.engine import SessionFactory, transaction

log = logging.getLogger(__name__)

KIND = "webserver"
INTERVAL_SECONDS = 5.0


class Heartbeat:
    """Beat every ``interval`` seconds until :meth:`stop`, which records ``stopped``."""

    def __init__(
        self,
        session_factory: SessionFactory,
        *,
        host: str,
        clock: Callable[[], datetime],
        interval: float = INTERVAL_SECONDS,
        pid: int | None = None,
        fingerprints: dict[str, str] | None = None,
    ) -> None:
        self._factory = session_factory
        self._fingerprints = fingerprints
        self._host = host
        self._clock = clock
        self._interval = interval
        self._pid = os.getpid() if pid is None else pid
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="webserver-heartbeat", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopped.set()
        self._thread.join(timeout)
        self.beat(state="stopped")

    def beat(self, *, state: str = "running") -> bool:
        """Write one heartbeat; ``False`` (and a log line) when the metastore failed."""

        def work(session: Session) -> int:
            return heartbeat_component(
                KIND,
                self._host,
                self._pid,
                session=session,
                now=self._clock(),
                state=state,
                fingerprints=self._fingerprints,
            )

        try:
            transaction(self._factory, work, retries=1)
        except TradewindError as exc:
            log.warning("webserver heartbeat failed: %s", exc)
            return False
        return True

    def _run(self) -> None:
        while not self._stopped.is_set():
            self.beat()
            self._stopped.wait(self._interval)
