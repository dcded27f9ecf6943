"""Which idle pool process takes which waiting message: the local pool's placement policy.

A pool process that already imported a message's DAG version runs its try at once;
one that has not must import the DAG file first (for a 1,000-task file, about 0.1 s of
CPU). So :func:`place` gives a message to a warm process when it can, and makes a cold
one import the version only when that pays, as :class:`~cluster.executors.cold_starts.ColdStarts`
measures it; :func:`prefetch` queues what is left of quick versions behind busy warm
processes. Both are plain functions over snapshots the executor takes under its lock:
no processes, no pipes, no metastore and no clock (``now`` is an argument), so every
rule below is tested without forking (``tests/unit/executors/test_placement.py``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field

from cluster.executors.cold_starts import COLD_STARTS, QUICK_TRY, ColdStarts, Version
from cluster.messages import TaskMessage


@dataclass(slots=True)
class IdleWorker:
    """A pool process with nothing to run, and the DAG versions it has imported.

    Not frozen, as :class:`RunningTry`: the executor builds these snapshots on its
    pump's hot path, and a frozen dataclass costs three times as much to build.
    """

    number: int
    warm: Collection[Version] = frozenset()


@dataclass(slots=True)
class RunningTry:
    """A try a pool process holds, as placement sees it.

    ``cold``: its process imports the version first; ``started_at``: when the process
    said it has the version and starts the task (monotonic), ``None`` until then (a
    cold try not started yet is an import under way).
    """

    version: Version
    cold: bool = False
    started_at: float | None = None


@dataclass(slots=True)
class BusyWorker:
    """A pool process running a try that started at ``started_at`` (monotonic), of
    DAG version ``version``, with nothing queued behind it."""

    number: int
    version: Version
    started_at: float
    warm: Collection[Version] = frozenset()


@dataclass(frozen=True)
class Assignment:
    """Worker ``worker`` runs ``message``; ``cold``: it imports the DAG version first;
    ``ahead``: it runs it after the try it is running (see :func:`prefetch`)."""

    worker: int
    message: TaskMessage
    cold: bool
    ahead: bool = False


@dataclass
class Placement:
    """What :func:`place` decided: the hand-overs, and the messages that keep waiting
    (in their order, ahead of any message sent later)."""

    assignments: list[Assignment] = field(default_factory=list)
    waiting: list[TaskMessage] = field(default_factory=list)


def version_of(message: TaskMessage) -> Version:
    """The DAG version a message's try needs: ``(dag_id, fingerprint)``."""
    return message.dag_id, message.fingerprint


def place(
    waiting: Sequence[TaskMessage],
    idle: Sequence[IdleWorker],
    running: Sequence[RunningTry],
    costs: ColdStarts,
    now: float,
    *,
    cpu_busy: float = 0.0,
) -> Placement:
    """Pair waiting messages (oldest first) with idle workers (most recently idle last).

    A worker that already imported the message's DAG version goes first, the most
    recently idle of them first (in a chain, the same warm worker takes each next
    task). Else a cold worker (the most recently idle) imports the version, but only
    while fewer than :data:`~cluster.executors.cold_starts.COLD_STARTS` workers import
    it, not once the workers running it are as many as can help
    (:meth:`ColdStarts.crowded`, while the processors are ``cpu_busy``), and, while
    some worker already runs that version,
    only when :meth:`ColdStarts.pays` says so. A message that must wait keeps its
    place; later messages of other versions may pass it.

    Each waiting message's version must have its backlog clock running in ``costs``
    (:meth:`ColdStarts.waiting`, called when the message arrived). ``costs`` is the one
    thing changed: a version's clock restarts at a cold start (so one call starts at
    most one cold worker by patience alone) and ends once none of its messages waits.
    """
    free = [worker.number for worker in idle]
    warm_of = {worker.number: worker.warm for worker in idle}
    importing = Counter(t.version for t in running if t.cold and t.started_at is None)
    # the workers that will be free for a version soonest: those running it
    working = Counter(t.version for t in running)
    waiting_of = Counter(version_of(m) for m in waiting)
    running_for = _longest_running(running, now)
    placement = Placement()
    pending = iter(waiting)
    while free:
        message = next(pending, None)
        if message is None:
            break
        version = version_of(message)
        warm = [n for n in free if version in warm_of[n]]
        if warm:
            number = warm[-1]
        elif (
            importing[version] < COLD_STARTS
            and not costs.crowded(version, working[version], cpu_busy=cpu_busy)
        ) and (
            working[version] == importing[version]  # none runs it yet: import now
            or costs.pays(
                version,
                waiting=waiting_of[version],
                workers=working[version],
                now=now,
                running_for=running_for.get(version, 0.0),
            )
        ):
            number = free[-1]
            importing[version] += 1
            costs.cold_started(version, now)
        else:
            placement.waiting.append(message)
            continue
        waiting_of[version] -= 1
        working[version] += 1
        free.remove(number)
        placement.assignments.append(Assignment(number, message, cold=not warm))
    placement.waiting.extend(pending)
    costs.waiting_only({version_of(m) for m in placement.waiting})
    return placement


def prefetch(
    waiting: Sequence[TaskMessage], busy: Sequence[BusyWorker], costs: ColdStarts, now: float
) -> Placement:
    """Queue waiting messages of quick versions behind busy warm workers, one each.

    A message left waiting by :func:`place` (no idle worker has its version, and no
    cold one should import it) goes to a worker that has its version and runs a quick
    try (:meth:`ColdStarts.quick`, started less than
    :data:`~cluster.executors.cold_starts.QUICK_TRY` ago), the longest-running first:
    it starts its next try the moment it reports, without waiting for the executor to
    claim one. A fan-out of small tasks thus keeps a few warm processes busy instead
    of making more of them import its DAG. Only quick versions' messages are queued so,
    behind quick tries: a queued try is claimed (``running``, its start time set) when
    it is queued, so it must not wait long behind another.
    """
    candidates = sorted(
        (w for w in busy if costs.quick(w.version) and now - w.started_at < QUICK_TRY),
        key=lambda w: w.started_at,
    )
    placement = Placement()
    for message in waiting:
        version = version_of(message)
        worker = None
        if candidates and costs.quick(version):
            worker = next((w for w in candidates if version in w.warm), None)
        if worker is None:
            placement.waiting.append(message)
            continue
        candidates.remove(worker)
        placement.assignments.append(Assignment(worker.number, message, cold=False, ahead=True))
    if placement.assignments:
        costs.waiting_only({version_of(m) for m in placement.waiting})
    return placement


def _longest_running(running: Iterable[RunningTry], now: float) -> dict[Version, float]:
    """The longest a started try of each version has run, at ``now``."""
    longest: dict[Version, float] = {}
    for current in running:
        if current.started_at is not None:
            elapsed = now - current.started_at
            longest[current.version] = max(longest.get(current.version, 0.0), elapsed)
    return longest
