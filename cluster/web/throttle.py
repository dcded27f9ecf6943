"""Login throttling by client address, in memory.

:func:`cluster.metastore.users.authenticate` already locks an account after five wrong
passwords; that stops guessing one account's password, not one client trying a few
passwords on many accounts. This throttle counts failed logins per client address in
a sliding window and refuses further attempts until the window has passed. It is per
process (each gunicorn worker keeps its own), which bounds an attacker to
``workers * max_failures`` attempts per window: good enough without shared state.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable

MAX_FAILURES = 10
WINDOW_SECONDS = 300.0
#: addresses remembered at most; the least recently failing are forgotten first
MAX_ADDRESSES = 10_000


class LoginThrottle:
    """Failed logins per address in the last ``window`` seconds.

    :param clock: injected so tests can move time instead of sleeping.
    """

    def __init__(
        self,
        *,
        max_failures: int = MAX_FAILURES,
        window: float = WINDOW_SECONDS,
        max_addresses: int = MAX_ADDRESSES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.window = window
        self.max_addresses = max_addresses
        self._clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def retry_after(self, address: str) -> float:
        """Seconds until ``address`` may try again; 0 when it may try now."""
        with self._lock:
            recent = self._prune(address)
            if len(recent) < self.max_failures:
                return 0.0
            return max(recent[0] + self.window - self._clock(), 0.0)

    def record_failure(self, address: str) -> None:
        with self._lock:
            recent = self._prune(address)
            recent.append(self._clock())
            self._failures[address] = recent
            self._failures.move_to_end(address)
            while len(self._failures) > self.max_addresses:
                self._failures.popitem(last=False)

    def _prune(self, address: str) -> deque[float]:
        recent = self._failures.get(address, deque())
        cutoff = self._clock() - self.window
        while recent and recent[0] <= cutoff:
            recent.popleft()
        if not recent:
            self._failures.pop(address, None)
        return recent
