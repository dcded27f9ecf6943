"""``BaseTrigger`` and ``TriggerEvent``: what a deferred task waits on (Airflow 2.2+).

In the SDK because DAG files, operators and sensors use them; ``cluster.triggers.base``
(Airflow's ``airflow.triggers.base``) re-exports them beside the standard triggers.

A trigger is an asyncio coroutine that yields :class:`TriggerEvent` when its condition
holds; it must be rebuildable anywhere from :meth:`BaseTrigger.serialize` (an importable
class path and keyword arguments that are plain data, datetimes and timedeltas), since
the triggerer that runs it is another process, maybe on another machine, and may hand
it to another triggerer after a crash. Its events should therefore be the same wherever
it runs: a try resumes on the first event only.

``TaskSuccessEvent`` / ``TaskFailedEvent`` / ``TaskSkippedEvent`` end the task without
running its method (Airflow's ``end_from_trigger``): the resumed try records that state
(with the event's XComs) at once.
"""

from __future__ import annotations

import abc
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

#: the key of a task-end event's payload (see :func:`task_end_of`)
TASK_END_KEY = "__tradewind_task_end__"


@dataclass
class StartTriggerArgs:
    """Airflow's arguments to start a task in the triggerer (accepted for imports; Tradewind
    always starts a task on a worker, which then defers)."""

    trigger_cls: str
    next_method: str
    trigger_kwargs: dict[str, Any] | None = None
    next_kwargs: dict[str, Any] | None = None
    timeout: timedelta | None = None


class BaseTrigger(abc.ABC):
    """Base of every trigger: implement :meth:`serialize` and the async :meth:`run`."""

    def __init__(self, **kwargs: Any) -> None:
        #: set by the triggerer that runs it, for its logs
        self.trigger_id: int | None = None
        self.task_instance: Any = None

    @property
    def log(self) -> logging.Logger:
        return logging.getLogger(f"tradewind.triggers.{type(self).__name__}")

    @abc.abstractmethod
    def serialize(self) -> tuple[str, dict[str, Any]]:
        """``(class path, keyword arguments)`` that rebuild this trigger elsewhere."""

    @abc.abstractmethod
    def run(self) -> AsyncIterator[TriggerEvent]:
        """Yield an event when the condition holds (single-event triggers then return)."""

    async def cleanup(self) -> None:  # noqa: B027  (optional hook, as Airflow's)
        """Called when the trigger is removed from a triggerer; errors are ignored."""

    def __repr__(self) -> str:
        classpath, kwargs = self.serialize()
        return f"<{classpath} {', '.join(f'{k}={v}' for k, v in kwargs.items())}>"


class TriggerEvent:
    """What a trigger yields: the ``payload`` reaches the resumed method as ``event``."""

    def __init__(self, payload: Any) -> None:
        self.payload = payload

    def __repr__(self) -> str:
        return f"TriggerEvent<{self.payload!r}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TriggerEvent) and other.payload == self.payload

    def __hash__(self) -> int:
        return hash(repr(self.payload))


class BaseTaskEndEvent(TriggerEvent):
    """An event that ends the task in ``task_instance_state`` instead of resuming it."""

    task_instance_state = "success"

    def __init__(self, *, xcoms: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if "payload" in kwargs:
            raise ValueError("Param 'payload' not supported for this class.")
        super().__init__({TASK_END_KEY: self.task_instance_state, "xcoms": dict(xcoms or {})})
        self.xcoms = xcoms


class TaskSuccessEvent(BaseTaskEndEvent):
    """End the task successfully from the trigger."""

    task_instance_state = "success"


class TaskFailedEvent(BaseTaskEndEvent):
    """End the task as failed from the trigger."""

    task_instance_state = "failed"


class TaskSkippedEvent(BaseTaskEndEvent):
    """End the task as skipped from the trigger."""

    task_instance_state = "skipped"


def task_end_of(payload: Any) -> tuple[str, dict[str, Any]] | None:
    """``(state, xcoms)`` when ``payload`` is a task-end event's, else ``None``."""
    if isinstance(payload, dict) and payload.get(TASK_END_KEY) in ("success", "failed", "skipped"):
        return str(payload[TASK_END_KEY]), dict(payload.get("xcoms") or {})
    return None
