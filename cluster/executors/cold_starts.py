"""When a pool process that lacks a DAG version should import it: costs measured per version.

An import of a DAG file costs a pool process CPU (a 1,000-task file, about 0.1 s);
a process that has the version runs its next try at once. So the pool gives a try to
a warm process when it can, and makes one more process import the version only when
that pays: a try outlasts an import (long tasks spread over the pool, as far as pools
and limits let the scheduler send them), or the queue ahead would wait longer for the
processes running the version than an import takes, or the version's messages have
kept waiting, without a break, for as long as an import takes: a backlog the warm
processes did not catch up with in that time is likely to last another, so one more
process imports (and the next one after as long again). Short tasks thus run on a few
warm processes, and more of them warm up only while they keep falling behind.

Two more rules for *quick* tries (shorter than :data:`QUICK_TRY`, typical of fan-outs
of small tasks): a warm process may be handed its next try of such a version while it
runs one (see :func:`~cluster.executors.placement.prefetch`), and while every core is
busy a version whose tries are also shorter than its import is imported by at most
:data:`BUSY_CORES_WORKERS` processes: more of them cannot run it faster than the
cores do, they only pay for more imports (on 2 cores a fan-out of 1,000 Python no-ops
warmed 10 to 12 processes).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

#: a DAG version: ``(dag_id, fingerprint)``
Version = tuple[str, str]

#: workers that may import the same DAG version at once: imports are CPU-bound, so
#: more than one per core only adds copies
COLD_STARTS = max(2, os.cpu_count() or 2)
#: seconds a message waits for a warm worker before a cold one imports its DAG version,
#: until an import of that version was measured
COLD_PATIENCE = 0.2
#: weight of the newest figure in a DAG version's moving average costs
COST_WEIGHT = 0.2
#: past :data:`COLD_STARTS` processes, a backlog pays for one more import of a version
#: only while its imports cost at most this share of the time its tries ran
IMPORT_SHARE = 0.5
#: seconds under which a version's tries are quick: a warm process may hold the next one
#: while it runs one, which then starts up to about this much later than it was claimed
QUICK_TRY = 0.1
#: the share of time the processors are busy from which no core is left for more processes
BUSY_CORES = 0.9
#: processes that may import a version whose tries are quicker than its import while
#: the cores are busy
BUSY_CORES_WORKERS = 3 * (os.cpu_count() or 2)


@dataclass
class VersionCost:
    """What a DAG version costs a worker, in seconds (moving averages, once measured).

    ``load``: a cold worker's import, from the hand-over to its "started"; ``busy``: how
    long a try holds a worker that has the DAG, until its report is recorded.
    """

    load: float | None = None
    busy: float | None = None
    #: how many processes imported the version, and the seconds its tries ran in all
    imports: int = 0
    work: float = 0.0

    def import_affordable(self, running_for: float = 0.0) -> bool:
        """Whether one more import keeps the version's imports within :data:`IMPORT_SHARE`
        of its tries' time; always until an import was measured, and while a try lasts
        (or has been running) at least as long as an import."""
        if self.load is None or max(self.busy or 0.0, running_for) >= self.load:
            return True
        return (self.imports + 1) * self.load <= IMPORT_SHARE * self.work

    def worth_a_cold_start(
        self, waiting: int, workers: int, *, running_for: float = 0.0
    ) -> bool | None:
        """Whether a new worker's import pays: its first try takes longer than the import,
        or the ``waiting`` messages would wait longer for the ``workers`` running the
        version than the import takes. ``None`` while no import was measured. Until a
        try ended, the longest a try of the version has been running (``running_for``)
        stands in for ``busy``."""
        if self.load is None:
            return None
        busy = self.busy if self.busy is not None else running_for
        return busy * max(1.0, waiting / max(1, workers)) > self.load


class ColdStarts:
    """The measured costs of the versions a pool ran, each version's backlog clock, and
    the decision they feed."""

    def __init__(self) -> None:
        self._costs: dict[Version, VersionCost] = {}
        #: since when each version has had messages waiting, without a break (monotonic)
        self._backlogged: dict[Version, float] = {}

    def waiting(self, version: Version, now: float) -> None:
        """A message of ``version`` waits from ``now``: its version's clock runs."""
        self._backlogged.setdefault(version, now)

    def waiting_only(self, versions: set[Version]) -> None:
        """Only ``versions`` have messages waiting: the other clocks stop."""
        for version in [v for v in self._backlogged if v not in versions]:
            del self._backlogged[version]

    def cold_started(self, version: Version, now: float) -> None:
        """A worker imports ``version`` from ``now``: the next one waits as long again."""
        self._backlogged[version] = now
        self._costs.setdefault(version, VersionCost()).imports += 1

    def patience_spent(self, version: Version, now: float) -> None:
        """``version`` may take a cold worker at once (its claim failed after waiting)."""
        self._backlogged[version] = now - self.patience(version)

    def forget_waiting(self) -> None:
        """No message waits any more (the pool stops taking work)."""
        self._backlogged.clear()

    def patience_ends(self) -> list[float]:
        """When each waiting version's patience runs out (monotonic)."""
        return [since + self.patience(v) for v, since in self._backlogged.items()]

    def imported(self, version: Version, seconds: float) -> None:
        """A cold worker had ``version`` ``seconds`` after it got its try."""
        cost = self._costs.setdefault(version, VersionCost())
        cost.load = _average(cost.load, seconds)

    def ran(self, version: Version, seconds: float) -> None:
        """A try of ``version`` held a worker that had it for ``seconds``."""
        cost = self._costs.setdefault(version, VersionCost())
        cost.busy = _average(cost.busy, seconds)
        cost.work += seconds

    def quick(self, version: Version) -> bool:
        """Whether ``version``'s tries were measured shorter than :data:`QUICK_TRY`."""
        cost = self._costs.get(version)
        return cost is not None and cost.busy is not None and cost.busy < QUICK_TRY

    def crowded(self, version: Version, workers: int, *, cpu_busy: float) -> bool:
        """Whether ``workers`` processes running ``version`` are as many as can help:
        :data:`BUSY_CORES_WORKERS` run it, the processors are busy (``cpu_busy``, the
        share of time they were, is at least :data:`BUSY_CORES`), and its tries are quick
        and quicker than its import."""
        cost = self._costs.get(version)
        return (
            workers >= BUSY_CORES_WORKERS
            and cpu_busy >= BUSY_CORES
            and self.quick(version)
            and cost is not None
            and cost.load is not None
            and cost.busy is not None
            and cost.busy < cost.load
        )

    def patience(self, version: Version) -> float:
        """How long a version's messages keep waiting for warm workers before one more
        worker imports it: an import's time, once measured, else :data:`COLD_PATIENCE`."""
        cost = self._costs.get(version)
        return cost.load if cost is not None and cost.load is not None else COLD_PATIENCE

    def pays(
        self, version: Version, *, waiting: int, workers: int, now: float, running_for: float
    ) -> bool:
        """Whether one more worker should import ``version`` at ``now`` while ``workers``
        run it and ``waiting`` messages of it wait: some have waited, without a break
        (since its last cold start, if later), for its patience, or the costs say so."""
        cost = self._costs.get(version)
        if now - self._backlogged[version] >= self.patience(version) and (
            workers < COLD_STARTS or cost is None or cost.import_affordable(running_for)
        ):
            return True
        return cost is not None and bool(
            cost.worth_a_cold_start(waiting, workers, running_for=running_for)
        )


def _average(old: float | None, new: float) -> float:
    return new if old is None else old + COST_WEIGHT * (new - old)
