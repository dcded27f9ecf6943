"""A process's ``component`` row, refreshed from a background thread.

Schedulers, webservers and workers each beat so that ``tradewind cluster status``,
``/health`` and the cluster page can tell who is alive and in which role. A failed beat
(metastore down) is logged and retried at the next one: it never takes a process down.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from cluster.errors import TradewindError
from cluster.metastore.components import heartbeat_component
from cluster.metastore.engine import SessionFactory, transaction

log = logging.getLogger(__name__)

#: how often a webserver beats (schedulers and workers use ``scheduler.heartbeat_interval``)
WEBSERVER_BEAT_SECONDS = 5.0

#: what a process says of itself at each beat: its state and extra JSON detail
Describe = Callable[[], tuple[str, Any]]


class ComponentHeartbeat:
    """Beat every ``interval`` seconds until :meth:`stop`, which records ``stopped``.

    :attr:`component_id` is the process's ``component`` id once a beat was written, and
    :meth:`age` how long ago the last one was (a triggerer fences itself by it).
    """

    def __init__(
        self,
        sessions: SessionFactory,
        *,
        kind: str,
        host: str,
        interval: float,
        describe: Describe = lambda: ("running", None),
        fingerprints: Mapping[str, str] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        monotonic: Callable[[], float] = time.monotonic,
        pid: int | None = None,
    ) -> None:
        self._sessions = sessions
        self.kind = kind
        self.host = host
        self.pid = os.getpid() if pid is None else pid
        self._interval = interval
        self._describe = describe
        self._fingerprints = fingerprints
        self._clock = clock
        self._monotonic = monotonic
        self.component_id: int | None = None
        self._last_ok: float | None = None
        self._stopped = threading.Event()
        #: the last beat failed (the next failure logs at debug level only)
        self._failing = False
        self._thread = threading.Thread(target=self._run, name=f"{kind}-heartbeat", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        self.beat(state="stopped")

    def beat(self, *, state: str | None = None) -> bool:
        """Write one heartbeat; ``False`` (and a log line) when the metastore failed."""
        described_state, extra = self._describe()
        try:
            component_id = transaction(
                self._sessions,
                lambda session: heartbeat_component(
                    self.kind,
                    self.host,
                    self.pid,
                    session=session,
                    now=self._clock(),
                    state=state or described_state,
                    extra=extra,
                    fingerprints=self._fingerprints,
                ),
                retries=1,
            )
        except TradewindError as exc:
            # one warning per outage, not one per beat
            level = logging.DEBUG if self._failing else logging.WARNING
            log.log(level, "%s heartbeat failed: %s", self.kind, exc)
            self._failing = True
            return False
        if self._failing:
            log.warning("%s heartbeat written again: the metastore is back", self.kind)
            self._failing = False
        self.component_id = component_id
        self._last_ok = self._monotonic()
        return True

    def age(self) -> float:
        """Seconds since the last heartbeat that was written (infinite before the first)."""
        last = self._last_ok
        return float("inf") if last is None else self._monotonic() - last

    def _run(self) -> None:
        while not self._stopped.is_set():
            self.beat()
            self._stopped.wait(self._interval)
