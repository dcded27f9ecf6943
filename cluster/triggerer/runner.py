"""The asyncio loop of a triggerer: each trigger one task, in a thread of its own.

The thread that talks to the metastore hands triggers in (:meth:`TriggerRunner.add`,
:meth:`TriggerRunner.cancel`) and takes their outcomes out
(:meth:`TriggerRunner.take_outcomes`); both sides are thread-safe, so a slow metastore
never stalls the loop and a busy loop never delays a heartbeat. A trigger runs until its
first event (a try resumes on the first event only, so later ones would be dropped) or
until it raises; either way its ``cleanup()`` runs, and so it does when it is cancelled.

What can go wrong: a trigger that calls blocking code stalls every trigger of the loop.
A watchdog notices the loop waking late and says so in the log and in
:attr:`TriggerRunner.blocked` (Airflow's ``triggers.blocked_main_thread``); it cannot
tell which trigger it was.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any, Protocol

from cluster.triggerer.outcomes import (
    Fired,
    Outcome,
    failure_of,
    failure_without_event,
)

log = logging.getLogger(__name__)

#: how often the watchdog wakes, and how late it may wake before the loop counts as blocked
WATCH_INTERVAL = 0.1
BLOCK_THRESHOLD = 0.2


class Trigger(Protocol):
    """What the runner needs of a trigger (``cluster.triggers.base.BaseTrigger``)."""

    def run(self) -> AsyncIterator[Any]: ...

    async def cleanup(self) -> None: ...


class TriggerRunner:
    """Runs triggers on an event loop of its own until :meth:`stop`.

    :param on_outcome: called (from the loop's thread) after each new outcome, so the
        metastore side can write it at once instead of at its next poll.
    """

    def __init__(
        self,
        *,
        on_outcome: Callable[[], None] = lambda: None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._on_outcome = on_outcome
        self._monotonic = monotonic
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._main, name="triggerer-asyncio", daemon=True)
        self._lock = threading.Lock()
        #: ids handed in and not yet forgotten: running, or with an outcome not yet written
        self._known: set[int] = set()
        #: ids whose task is running now
        self._running: set[int] = set()
        #: the loop's tasks, touched only from the loop's thread
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._outcomes: deque[Outcome] = deque()
        #: times the loop woke later than :data:`BLOCK_THRESHOLD`
        self.blocked = 0

    # --- the metastore side ---------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def add(self, trigger_id: int, trigger: Trigger) -> None:
        """Start running ``trigger``; an id already known is ignored."""
        with self._lock:
            if trigger_id in self._known:
                return
            self._known.add(trigger_id)
            self._running.add(trigger_id)
        self._loop.call_soon_threadsafe(self._start, trigger_id, trigger)

    def report(self, outcome: Outcome) -> None:
        """Queue an outcome found outside the loop (a trigger that could not be built)."""
        with self._lock:
            self._known.add(outcome.trigger_id)
        self._emit(outcome)

    def cancel(self, trigger_ids: Iterable[int]) -> None:
        """Stop these triggers (their rows went to another triggerer, or away)."""
        ids = list(trigger_ids)
        if ids:
            self._loop.call_soon_threadsafe(self._cancel, ids)

    def cancel_all(self) -> None:
        """Stop every trigger and drop every outcome not yet taken (self-fencing)."""
        with self._lock:
            ids = list(self._running)
            self._known.difference_update(o.trigger_id for o in self._outcomes)
            self._outcomes.clear()
        self.cancel(ids)

    def take_outcomes(self) -> list[Outcome]:
        """The outcomes since the last call; their ids stay known until :meth:`forget`."""
        taken = []
        while self._outcomes:
            taken.append(self._outcomes.popleft())
        return taken

    def forget(self, trigger_ids: Iterable[int]) -> None:
        """These outcomes were written (or dropped): the ids may be handed in again."""
        with self._lock:
            self._known.difference_update(trigger_ids)

    def known(self) -> set[int]:
        """Ids running or with an outcome not yet forgotten."""
        with self._lock:
            return set(self._known)

    def running(self) -> set[int]:
        with self._lock:
            return set(self._running)

    def stop(self, timeout: float = 30.0) -> None:
        """Cancel every trigger, give each its ``cleanup()``, and end the thread."""
        if not self._thread.is_alive():
            self._loop.close()
            return
        done = asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop)
        try:
            done.result(timeout)
        except TimeoutError:
            log.warning("triggers did not finish their cleanup within %.0f s", timeout)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout)

    # --- the loop's side ------------------------------------------------------------

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        watchdog = self._loop.create_task(self._watchdog())
        try:
            self._loop.run_forever()
        finally:
            watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                self._loop.run_until_complete(watchdog)
            self._loop.close()

    def _start(self, trigger_id: int, trigger: Trigger) -> None:
        task = self._loop.create_task(self._run(trigger_id, trigger), name=f"trigger-{trigger_id}")
        self._tasks[trigger_id] = task
        task.add_done_callback(lambda _: self._finished(trigger_id))

    def _finished(self, trigger_id: int) -> None:
        task = self._tasks.pop(trigger_id, None)
        with self._lock:
            self._running.discard(trigger_id)
            if task is not None and task.cancelled():
                self._known.discard(trigger_id)  # no outcome: it may be handed in again

    def _cancel(self, trigger_ids: list[int]) -> None:
        for trigger_id in trigger_ids:
            task = self._tasks.get(trigger_id)
            if task is not None:
                task.cancel()

    async def _shutdown(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _emit(self, outcome: Outcome) -> None:
        self._outcomes.append(outcome)
        self._on_outcome()

    async def _run(self, trigger_id: int, trigger: Trigger) -> None:
        """Run one trigger to its first event or error; cancellation ends it silently."""
        try:
            outcome = await _first_outcome(trigger_id, trigger)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the trigger's own error: it fails its tries
            log.warning("trigger %s raised %s: %s", trigger_id, type(exc).__name__, exc)
            outcome = failure_of(trigger_id, exc)
        finally:
            with contextlib.suppress(Exception):
                await trigger.cleanup()
        if isinstance(outcome, Fired):
            log.info("trigger %s fired: %r", trigger_id, outcome.payload)
        self._emit(outcome)

    async def _watchdog(self) -> None:
        """Count (and log) each time the loop wakes much later than asked."""
        while True:
            asked = self._monotonic()
            await asyncio.sleep(WATCH_INTERVAL)
            late = self._monotonic() - asked - WATCH_INTERVAL
            if late > BLOCK_THRESHOLD:
                self.blocked += 1
                # info, as Airflow logs it: a loaded machine also wakes a loop late
                log.info(
                    "the triggerer's event loop was blocked for %.2f s, likely by a trigger "
                    "calling blocking code (such code belongs in asyncio.to_thread)",
                    late,
                )


async def _first_outcome(trigger_id: int, trigger: Trigger) -> Outcome:
    """The first event ``trigger.run()`` yields, or why there was none."""
    events = trigger.run()
    if not hasattr(events, "__anext__"):
        if asyncio.iscoroutine(events):
            result = await events  # Airflow's classic mistake: returning the event
            return failure_without_event(
                trigger_id, f"the trigger returned {result!r} instead of yielding an event"
            )
        return failure_without_event(trigger_id, "the trigger's run() is not an async generator")
    try:
        async for event in events:
            if not hasattr(event, "payload"):
                return failure_without_event(
                    trigger_id, f"the trigger yielded {event!r}, not a TriggerEvent"
                )
            return Fired(trigger_id, event.payload)
    finally:
        closing = getattr(events, "aclose", None)
        if closing is not None:
            with contextlib.suppress(Exception):
                await closing()
    return failure_without_event(trigger_id, "the trigger exited without sending an event")
