"""The shared slots where a pool process keeps its task's process groups."""

from __future__ import annotations

import os

from cluster.executors.local_groups import SLOTS, GroupSlots


def test_slots_keep_groups_until_full_and_free_them_again() -> None:
    slots = GroupSlots()
    assert all(slots.add(pgid) for pgid in range(100, 100 + SLOTS))
    assert not slots.add(999)  # full: the caller tells the executor over the pipe
    assert slots.discard(100) and not slots.discard(100)
    assert not slots.discard(999)
    assert slots.add(999)
    assert slots.running() == set(range(101, 100 + SLOTS)) | {999}
    slots.clear()
    assert slots.running() == set()


def test_what_a_forked_child_keeps_is_read_by_its_parent() -> None:
    slots = GroupSlots()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child leaves at once
        slots.add(4242)
        os._exit(0)
    os.waitpid(child, 0)
    assert slots.running() == {4242}
