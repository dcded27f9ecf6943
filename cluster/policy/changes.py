"""The one decision type the loop writes: move this instance from this state to that."""

from __future__ import annotations

from dataclasses import dataclass

from cluster.states import TaskState

#: a key of a run's instances: a task id (map index -1), or ``(task_id, map_index)``
InstanceKey = str | tuple[str, int]


def instance_key(key: InstanceKey) -> tuple[str, int]:
    """``(task_id, map_index)`` of a key that may be a bare task id."""
    return (key, -1) if isinstance(key, str) else key


def key_of(task_id: str, map_index: int) -> InstanceKey:
    """The key the loop and the policy use: the bare task id for an unmapped instance."""
    return task_id if map_index < 0 else (task_id, map_index)


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
    map_index: int = -1


@dataclass(frozen=True)
class Expansion:
    """Turn a mapped task's placeholder (``map_index = -1``, state ``none``) into
    instances ``0..count-1``, all ``none``: the loop rewrites the placeholder as index 0
    and inserts the others, then writes the run's state changes for them."""

    task_id: str
    count: int


@dataclass(frozen=True)
class Revision:
    """An expanded mapped task whose length changed since its expansion (its producer ran
    again after a clear, say), found when one of its instances waits for a decision:
    the loop inserts ``added`` as ``none`` instances and deletes the XComs ``removed``
    ones pushed before (values of the old expansion a reduce must not read); they become
    ``removed`` through the decision's state changes (Airflow's
    ``_revise_map_indexes_if_mapped``)."""

    task_id: str
    added: tuple[int, ...]
    removed: tuple[int, ...] = ()
