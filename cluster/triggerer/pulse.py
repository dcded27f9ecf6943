"""A triggerer's heartbeat, and the age of its last good one (for self-fencing).

Other triggerers take over the triggers of one whose ``component`` heartbeat is older
than ``triggerer.health_timeout``. A triggerer that cannot write its heartbeat (the
metastore unreachable from it alone, a long GC pause, a frozen VM) must therefore stop
running its triggers before that happens, or a trigger would run in two places:
:meth:`Pulse.age` (the component heartbeat's) tells the service how long ago the last
beat was written, and the service stops everything once it passes half the timeout. (Events a stopped triggerer
would still write are refused anyway: every write checks that the row is still its own.)
"""

from __future__ import annotations

from typing import Any

from cluster.metastore.engine import SessionFactory
from cluster.metastore.heartbeats import ComponentHeartbeat

KIND = "triggerer"


class Pulse(ComponentHeartbeat):
    """The ``triggerer`` component's heartbeat. Its thread waits an interval before its
    first beat: the service writes that one itself, before it claims anything."""

    def __init__(self, sessions: SessionFactory, **options: Any) -> None:
        super().__init__(sessions, kind=KIND, **options)

    def _run(self) -> None:
        while not self._stopped.wait(self._interval):
            self.beat()
