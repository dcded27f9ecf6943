"""What the local executor and one of its pool processes say over their pipe.

The executor sends :class:`Run` (a try it claimed; a second one may wait in the pipe
behind the try running) or :class:`Stop`. For each
:class:`Run` the pool process sends :class:`Started` once it has the DAG version, if it
had to import it or the task has a timeout (an empty task, which has nothing to
start, never does), a
:class:`GroupChanged` for each process group its task starts or ends beyond those
its shared slots hold (see :mod:`~cluster.executors.local_groups`), and one
:class:`Finished` with the report to record. Both sides import these classes, so a
renamed field is a type error instead of a tuple unpacked wrongly; they are pickled
by :mod:`multiprocessing`, so every field is picklable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cluster.messages import TaskMessage


@dataclass(frozen=True)
class Run:
    """Run this claimed try (executor to pool process)."""

    message: TaskMessage
    #: the book's claim (see :meth:`~cluster.executors.local_worker.TryBook.claim`)
    claimed: Any
    #: the process imports the try's DAG version first: it sends :class:`Started` once
    #: it has it (the executor measures the import); a warm process sends one only for
    #: a task with a timeout, sparing the executor a wake-up per try
    cold: bool = True


@dataclass(frozen=True)
class Stop:
    """Leave (executor to pool process): the executor stops."""


@dataclass(frozen=True)
class Started:
    """The try's task starts: the process has its DAG version (the executor measures the
    import), and will be killed if it runs past ``timeout`` seconds (``None``: never)."""

    timeout: float | None


@dataclass(frozen=True)
class GroupChanged:
    """The task started (``running``) or ended a process group: the executor kills the
    groups still running if the pool process dies, which would orphan them."""

    pgid: int
    running: bool


@dataclass(frozen=True)
class Finished:
    """The try ended; ``report`` is what :meth:`~cluster.executors.local_worker.TryBook.record` takes."""

    report: Any


#: what the executor sends
ToWorker = Run | Stop
#: what a pool process sends
FromWorker = Started | GroupChanged | Finished
