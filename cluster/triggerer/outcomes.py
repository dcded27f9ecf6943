"""What a trigger ends with: the event it fired, or why it failed.

Frozen values handed from the asyncio thread to the thread that writes the metastore.
"""

from __future__ import annotations

import traceback as tb
from dataclasses import dataclass
from typing import Any

#: Airflow's error text for a trigger that raised or ended without an event
FAILURE_ERROR = "Trigger failure"


@dataclass(frozen=True, slots=True)
class Fired:
    """The trigger yielded its first event; ``payload`` resumes its tries."""

    trigger_id: int
    payload: Any


@dataclass(frozen=True, slots=True)
class Failed:
    """The trigger could not be built, raised, or ended without an event.

    ``traceback`` is the formatted exception (``traceback.format_exception`` lines), or
    one line saying what happened when nothing raised; it reaches the try's log.
    """

    trigger_id: int
    error: str
    traceback: tuple[str, ...]


Outcome = Fired | Failed


def failure_of(trigger_id: int, exc: BaseException) -> Failed:
    """A :class:`Failed` carrying ``exc`` and its traceback."""
    lines = tb.format_exception(type(exc), exc, exc.__traceback__)
    return Failed(trigger_id, FAILURE_ERROR, tuple(lines))


def failure_without_event(trigger_id: int, why: str) -> Failed:
    """A :class:`Failed` for a trigger that ended without raising (no event, a return)."""
    return Failed(trigger_id, FAILURE_ERROR, (why + "\n",))
