"""The process groups a pool process's task runs, kept where its executor reads them
without being woken: a few slots of memory the two processes share.

A Bash task starts one group per try. Telling the executor over the pipe cost its pump
a wake-up per try, only for the rare case it needs the groups: the pool process dies
and they must not outlive it. A task running more groups at once than there are slots
tells the executor about the others over the pipe
(:class:`~cluster.executors.local_pipe.GroupChanged`).
"""

from __future__ import annotations

import mmap

#: groups one pool process keeps in shared memory (a Bash task runs one at a time)
SLOTS = 8


class GroupSlots:
    """Process group ids in memory shared with the forked pool process; 0 is a free slot.

    Only the pool process writes; the executor reads once the process is gone.
    """

    def __init__(self) -> None:
        # anonymous and MAP_SHARED: the forked process writes into the same pages
        self._slots = memoryview(mmap.mmap(-1, SLOTS * 4)).cast("i")

    def add(self, pgid: int) -> bool:
        """Keep ``pgid``; ``False`` if every slot is taken."""
        for number, held in enumerate(self._slots):
            if held == 0:
                self._slots[number] = pgid
                return True
        return False

    def discard(self, pgid: int) -> bool:
        """Forget ``pgid``; ``False`` if no slot held it."""
        for number, held in enumerate(self._slots):
            if held == pgid:
                self._slots[number] = 0
                return True
        return False

    def clear(self) -> None:
        """The try ended: what it left running is no longer the executor's to kill."""
        for number in range(SLOTS):
            self._slots[number] = 0

    def running(self) -> set[int]:
        return {pgid for pgid in self._slots if pgid}
