"""Small triggers for the triggerer's tests, importable by class path.

They are duck-typed like ``cluster.triggers.base.BaseTrigger`` (``run`` an async
generator of objects with a ``payload``, ``cleanup``), so the runner is tested on its own.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

#: names of the triggers whose run began, and of those cleaned up (tests read them)
STARTED: list[str] = []
CLEANED: list[str] = []


@dataclass
class Event:
    payload: Any


class Sleeper:
    """Fires ``payload`` after ``seconds``."""

    def __init__(self, seconds: float = 0.0, payload: Any = "done", name: str = "") -> None:
        self.seconds = seconds
        self.payload = payload
        self.name = name
        self.trigger_id: int | None = None

    async def run(self) -> AsyncIterator[Event]:
        STARTED.append(self.name)
        await asyncio.sleep(self.seconds)
        yield Event(self.payload)
        yield Event("a second event nobody must see")

    async def cleanup(self) -> None:
        CLEANED.append(self.name)


#: opened by a test thread: every :class:`Gated` trigger fires then
GATE = threading.Event()


class Gated(Sleeper):
    """Fires ``payload`` once :data:`GATE` is open (it looks every ``seconds``), so a test
    decides when, instead of a time that a loaded machine may overrun."""

    async def run(self) -> AsyncIterator[Event]:
        STARTED.append(self.name)
        while not GATE.is_set():
            await asyncio.sleep(self.seconds or 0.05)
        yield Event(self.payload)


class Raiser(Sleeper):
    async def run(self) -> AsyncIterator[Event]:
        await asyncio.sleep(self.seconds)
        raise RuntimeError(f"the sky fell on {self.name}")
        yield Event(None)  # pragma: no cover - makes this an async generator


class Silent(Sleeper):
    async def run(self) -> AsyncIterator[Event]:
        await asyncio.sleep(self.seconds)
        return
        yield Event(None)  # pragma: no cover


class Blocker(Sleeper):
    """Calls blocking code on the loop (the mistake the watchdog reports)."""

    async def run(self) -> AsyncIterator[Event]:
        time.sleep(self.seconds)
        yield Event("blocked")
