"""A triggerer's heartbeat, and the age of its last good one (for self-fencing).

Other triggerers take over the triggers of one whose ``component`` heartbeat is older
than ``triggerer.health_timeout``. A triggerer that cannot write its heartbeat (the
metastore unreachable from it alone, a long GC pause, a frozen VM) must therefore stop
running its triggers before that happens, or a trigger would run in two places:
:meth:`Pulse.age` tells the service how long ago the last beat was written, and the
service stops everything once it passes half the timeout. (Events a stopped triggerer
would still write are refused anyway: every write checks that the row is still its own.)
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

KIND = "triggerer"

#: what the triggerer says of itself at each beat: its state and extra JSON detail
Describe = Callable[[], tuple[str, Any]]


class Pulse:
    """Beat every ``interval`` seconds from a thread of its own until :meth:`stop`.

    :attr:`component_id` is the triggerer's id in ``trigger.triggerer_id``; it is known
    once :meth:`beat` has succeeded once.
    """

    def __init__(
        self,
        sessions: SessionFactory,
        *,
        host: str,
        interval: float,
        describe: Describe = lambda: ("running", None),
        fingerprints: Mapping[str, str] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        monotonic: Callable[[], float] = time.monotonic,
        pid: int | None = None,
    ) -> None:
        self._sessions = sessions
        self.host = host
        self.pid = os.getpid() if pid is None else pid
        self._interval = interval
        self._describe = describe
        self._fingerprints = fingerprints
        self._clock = clock
        self._monotonic = monotonic
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="triggerer-heartbeat", daemon=True)
        self.component_id: int | None = None
        self._last_ok: float | None = None
        self._failing = False

    def beat(self, *, state: str | None = None) -> bool:
        """Write one heartbeat; ``False`` (logged once per outage) when it failed."""
        described, extra = self._describe()
        try:
            component_id = transaction(
                self._sessions,
                lambda session: heartbeat_component(
                    KIND,
                    self.host,
                    self.pid,
                    session=session,
                    now=self._clock(),
                    state=state or described,
                    extra=extra,
                    fingerprints=self._fingerprints,
                ),
                retries=1,
            )
        except TradewindError as exc:
            level = logging.DEBUG if self._failing else logging.WARNING
            log.log(level, "triggerer heartbeat failed: %s", exc)
            self._failing = True
            return False
        if self._failing:
            log.warning("triggerer heartbeat written again: the metastore is back")
            self._failing = False
        self.component_id = component_id
        self._last_ok = self._monotonic()
        return True

    def age(self) -> float:
        """Seconds since the last heartbeat that was written (infinite before the first)."""
        last = self._last_ok
        return float("inf") if last is None else self._monotonic() - last

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop beating and record ``stopped``, so others take the triggers over at once."""
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        self.beat(state="stopped")

    def _run(self) -> None:
        while not self._stopped.wait(self._interval):
            self.beat()
