"""The executor contract: what the scheduler loop hands an executor, and what it asks of it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from cluster.messages import TaskMessage


@dataclass(frozen=True)
class Dispatch:
    """A message and where it goes: the task's queue and its priority."""

    message: TaskMessage
    queue: str = "default"
    priority: int = 1


class Executor(Protocol):
    """What the scheduler loop needs from an executor."""

    def start(self) -> None:
        """Start workers or connect to the broker; called once before the loop."""

    def send(self, dispatches: list[Dispatch]) -> None:
        """Hand over task instances already moved to ``queued`` in the metastore."""

    def free_slots(self) -> int | None:
        """How many more tasks fit now; ``None`` when the executor does not limit."""

    def stop(self, *, drain: bool) -> None:
        """Stop; with ``drain`` let running tasks finish first."""
