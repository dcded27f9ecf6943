"""The one decision type the loop writes: move this instance from this state to that."""

from __future__ import annotations

from dataclasses import dataclass

from cluster.states import TaskState


@dataclass(frozen=True)
class StateChange:
    """A compare-and-set for the loop: ``UPDATE … WHERE state = source SET state = target``.

    ``source`` is the state the policy saw; if the row moved meanwhile the write
    loses and the next loop iteration decides again. ``reason`` is for logs and the UI.
    """

    task_id: str
    source: TaskState
    target: TaskState
    reason: str = ""
