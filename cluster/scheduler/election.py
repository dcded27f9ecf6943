"""Who leads: the ZooKeeper election among schedulers, or the sole scheduler.

An elector only answers "do I hold the election right now?". It is cheap to ask and
safe from any thread. The ZooKeeper elector contends with kazoo's ``Election`` recipe
in a thread of its own and listens to the connection state, because kazoo keeps a
leader's function running after its session is gone (TESTING.md measured 9 s):

- SUSPENDED (connection lost, session maybe alive): stop writing at once;
- CONNECTED again within the session: lead on, nobody else can have won;
- LOST (session expired): leave the election and contend again with a new session;
- :meth:`ZooKeeperElector.stop`: release at once so a standby takes over in milliseconds.

Holding the election is not enough to write: :class:`cluster.scheduler.leadership.Leadership`
also takes a fencing epoch in the metastore.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Protocol

from kazoo.client import KazooClient, KazooState
from kazoo.exceptions import KazooException
from kazoo.handlers.threading import KazooTimeoutError
from kazoo.retry import KazooRetry

from cluster.config import HaSettings
from cluster.errors import ConfigError, ElectionError

log = logging.getLogger(__name__)


class Elector(Protocol):
    """What a scheduler asks about the election."""

    def start(self, on_change: Callable[[], None]) -> None:
        """Begin contending; ``on_change`` is called (from any thread) when holding changes."""

    def holds(self) -> bool:
        """Whether this scheduler holds the election and may lead right now."""

    def resign(self) -> None:
        """Give up the election (e.g. after being fenced off) and contend again."""

    def stop(self) -> None:
        """Leave the election for good, releasing it at once."""


class SoleElector:
    """``ha.election = none``: the one scheduler always holds the election."""

    def __init__(self) -> None:
        self._running = False

    def start(self, on_change: Callable[[], None]) -> None:
        self._running = True
        on_change()

    def holds(self) -> bool:
        return self._running

    def resign(self) -> None:
        """Nothing to resign to: the fencing epoch is taken again at the next iteration."""

    def stop(self) -> None:
        self._running = False


class ZooKeeperElector:
    """Contends under ``ha.election_path`` (``{ha.chroot}/scheduler``) with kazoo's Election recipe.

    :param identifier: shown to other contenders (``tradewind cluster status``);
        ``host:pid`` of this scheduler.
    """

    def __init__(self, settings: HaSettings, *, identifier: str) -> None:
        if not settings.zookeeper_hosts:
            raise ConfigError("ha.election = zookeeper needs ha.zookeeper_hosts (host:port, ...)")
        self.identifier = identifier
        self.path = settings.election_path
        self._session_timeout = settings.session_timeout
        self._client = KazooClient(
            hosts=",".join(settings.zookeeper_hosts),
            timeout=settings.session_timeout,
            connection_retry=KazooRetry(max_tries=-1, max_delay=1.0),
            command_retry=KazooRetry(max_tries=3, max_delay=1.0),
        )
        self._client.add_listener(self._on_state)
        self._on_change: Callable[[], None] = lambda: None
        self._elected = threading.Event()
        self._connected = threading.Event()
        self._leave = threading.Event()
        self._stopped = threading.Event()
        self._stopping = threading.Lock()
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None

    # --- the Elector protocol -------------------------------------------------------

    def start(self, on_change: Callable[[], None]) -> None:
        self._on_change = on_change
        self._thread = threading.Thread(target=self._contend, name="zk-election", daemon=True)
        self._thread.start()

    def holds(self) -> bool:
        return self._elected.is_set() and self._connected.is_set() and not self._leave.is_set()

    def resign(self) -> None:
        log.warning("resigning from the scheduler election")
        self._leave.set()

    def stop(self) -> None:
        """Leave the election and close the session; later calls wait for the first."""
        with self._stopping:
            if self._stopped.is_set():
                return
            self._leave_for_good()

    def _leave_for_good(self) -> None:
        self._closing.set()
        self._leave.set()
        if self._thread is not None:
            self._thread.join(timeout=self._session_timeout + 5)
        try:
            self._client.stop()
            self._client.close()
        except KazooException as exc:  # the session ends with the process anyway
            log.debug("closing the ZooKeeper client: %s", exc)
        self._stopped.set()

    # --- contending -----------------------------------------------------------------

    def _contend(self) -> None:
        """Connect, then contend until stopped; each round lasts as long as one leadership."""
        while not self._closing.is_set():
            if not self._connect():
                continue
            self._leave.clear()
            election = self._client.Election(self.path, self.identifier)
            watcher = threading.Thread(
                target=self._cancel_when_leaving, args=(election,), daemon=True
            )
            watcher.start()
            try:
                election.run(self._lead)
            except Exception as exc:  # kazoo raises more than KazooException here
                log.warning("scheduler election interrupted: %s", exc)
            finally:
                self._elected.clear()
                self._leave.set()
                watcher.join()
            self._on_change()

    def _connect(self) -> bool:
        if self._client.connected:
            return True
        try:
            self._client.start(timeout=max(self._session_timeout, 2.0))
        except KazooTimeoutError:
            log.warning("ZooKeeper %s unreachable; retrying", self._client.hosts)
            return False
        self._connected.set()
        return True

    def _lead(self) -> None:
        """Kazoo calls this once elected; holding lasts until we must leave."""
        log.info("won the scheduler election as %s", self.identifier)
        self._elected.set()
        self._on_change()
        self._leave.wait()

    def _cancel_when_leaving(self, election: object) -> None:
        """Stop waiting to be elected when asked to leave (stop, LOST, resign)."""
        self._leave.wait()
        cancel = getattr(election, "cancel", None)
        if cancel is not None and not self._elected.is_set():
            cancel()

    def _on_state(self, state: str) -> None:
        """Kazoo's connection listener: runs in kazoo's thread, must not block."""
        if state == KazooState.CONNECTED:
            self._connected.set()
        elif state == KazooState.SUSPENDED:
            self._connected.clear()  # before the log line: tests read it as "paused"
            log.warning("ZooKeeper connection suspended: not scheduling until it is back")
        elif state == KazooState.LOST:
            self._connected.clear()
            self._leave.set()
            log.warning("ZooKeeper session lost: leaving the election")
        self._on_change()


def build_elector(settings: HaSettings, *, identifier: str) -> Elector:
    """The elector ``ha.election`` names.

    :raises ElectionError: on an unknown election kind.
    """
    if settings.election == "none":
        return SoleElector()
    if settings.election == "zookeeper":
        return ZooKeeperElector(settings, identifier=identifier)
    raise ElectionError(f"ha.election = {settings.election!r} is not known")
