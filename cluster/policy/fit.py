"""Which scheduled instances to queue now, within pools, DAG limits and parallelism.

Airflow's ``_executable_task_instances_to_queued`` without the database: candidates
in priority order (effective weight, then the older logical date, then ids); each
one that fits takes its ``pool_slots`` from its pool, one task from its DAG's
``max_active_tasks``, one from its task's ``max_active_tis_per_dag`` (all runs) and
``max_active_tis_per_dagrun`` (its run), and one executor slot. One that does not fit
is passed over, so a smaller task further down may still take the slots left. Slots are held only by
``queued`` and ``running`` instances; a sensor in reschedule mode is
``up_for_reschedule`` between pokes and so frees its slot by itself.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class QueueCandidate:
    """A ``scheduled`` instance that wants a slot."""

    dag_id: str
    run_id: str
    task_id: str
    logical_date: datetime
    #: the effective weight (:func:`~.weights.effective_priority_weights`)
    priority_weight: int = 1
    pool: str = "default_pool"
    pool_slots: int = 1
    map_index: int = -1
    #: the task's cap on its queued + running instances over all runs (``None``: none)
    max_active_tis_per_dag: int | None = None
    #: the task's cap on its queued + running instances in one run (``None``: none)
    max_active_tis_per_dagrun: int | None = None

    @property
    def has_task_limit(self) -> bool:
        return self.max_active_tis_per_dag is not None or self.max_active_tis_per_dagrun is not None

    def order_key(self) -> tuple[int, datetime, str, str, str, int]:
        return (
            -self.priority_weight,
            self.logical_date,
            self.task_id,
            self.dag_id,
            self.run_id,
            self.map_index,
        )


@dataclass(frozen=True)
class PoolSnapshot:
    """A pool's size and the slots its queued and running instances hold.

    ``slots = -1`` is an unlimited pool, as in Airflow.
    """

    name: str
    slots: int
    occupied: int = 0

    @property
    def free(self) -> float:
        return float("inf") if self.slots < 0 else max(self.slots - self.occupied, 0)


@dataclass(frozen=True)
class DagLoad:
    """A DAG's ``max_active_tasks`` and its queued + running instances (all runs)."""

    max_active_tasks: int
    active: int = 0


@dataclass(frozen=True)
class TaskLoads:
    """Queued + running instances of tasks that have a per-task limit, as Airflow's
    ``ConcurrencyMap`` counts them (its ``EXECUTION_STATES``: deferred instances do not
    count): each mapped instance counts as one.

    :ivar per_dag: ``(dag_id, task_id) → count`` over all the DAG's runs.
    :ivar per_run: ``(dag_id, run_id, task_id) → count``.
    """

    per_dag: Mapping[tuple[str, str], int] = field(default_factory=dict)
    per_run: Mapping[tuple[str, str, str], int] = field(default_factory=dict)


@dataclass(frozen=True)
class Unrunnable:
    """A candidate that can never be queued as things are, and why."""

    candidate: QueueCandidate
    reason: str


@dataclass(frozen=True)
class FitDecision:
    """What to queue now, in priority order, and what can never fit.

    :ivar never_fits: ``pool_slots`` larger than the whole pool: the loop should fail
        these instances with :attr:`Unrunnable.reason`.
    :ivar missing_pool: their pool does not exist; Airflow leaves them scheduled
        (a pool may be created later) and logs the reason.
    """

    to_queue: tuple[QueueCandidate, ...] = ()
    never_fits: tuple[Unrunnable, ...] = ()
    missing_pool: tuple[Unrunnable, ...] = ()


@dataclass
class _Budget:
    executor: float
    pools: dict[str, float]
    dags: dict[str, int]
    per_dag: Counter[tuple[str, str]]
    per_run: Counter[tuple[str, str, str]]
    queued: list[QueueCandidate] = field(default_factory=list)


def select_to_queue(
    candidates: Iterable[QueueCandidate],
    *,
    pools: Mapping[str, PoolSnapshot],
    dag_loads: Mapping[str, DagLoad],
    free_executor_slots: int,
    max_to_queue: int | None = None,
    task_loads: TaskLoads | None = None,
) -> FitDecision:
    """Choose the candidates to move ``scheduled → queued`` in this loop.

    :param free_executor_slots: ``core.parallelism`` minus the instances the
        executor holds (queued + running).
    :param dag_loads: per ``dag_id``; a DAG missing here is not limited.
    :param max_to_queue: an optional cap per loop (Airflow's ``max_tis_per_query``).
    :param task_loads: the active instances of the candidates' tasks that have a
        ``max_active_tis_per_dag`` or ``max_active_tis_per_dagrun``; those queued by this
        call are added as they are taken. ``None``: nothing active.
    """
    loads = task_loads or TaskLoads()
    budget = _Budget(
        executor=float(free_executor_slots),
        pools={name: pool.free for name, pool in pools.items()},
        dags={d: load.max_active_tasks - load.active for d, load in dag_loads.items()},
        per_dag=Counter(loads.per_dag),
        per_run=Counter(loads.per_run),
    )
    never: list[Unrunnable] = []
    missing: list[Unrunnable] = []
    for candidate in sorted(candidates, key=QueueCandidate.order_key):
        pool = pools.get(candidate.pool)
        if pool is None:
            missing.append(Unrunnable(candidate, f"pool {candidate.pool!r} does not exist"))
            continue
        if 0 <= pool.slots < candidate.pool_slots:
            never.append(Unrunnable(candidate, _too_big(candidate, pool)))
            continue
        if max_to_queue is None or len(budget.queued) < max_to_queue:
            _take_if_fits(candidate, budget)
    return FitDecision(tuple(budget.queued), tuple(never), tuple(missing))


def _take_if_fits(candidate: QueueCandidate, budget: _Budget) -> None:
    dag_room = budget.dags.get(candidate.dag_id)
    if budget.executor <= 0 or (dag_room is not None and dag_room <= 0):
        return
    if budget.pools[candidate.pool] < candidate.pool_slots:
        return
    if candidate.has_task_limit and _at_task_limit(candidate, budget):
        return
    budget.pools[candidate.pool] -= candidate.pool_slots
    if dag_room is not None:
        budget.dags[candidate.dag_id] = dag_room - 1
    budget.executor -= 1
    budget.per_dag[(candidate.dag_id, candidate.task_id)] += 1
    budget.per_run[(candidate.dag_id, candidate.run_id, candidate.task_id)] += 1
    budget.queued.append(candidate)


def _at_task_limit(candidate: QueueCandidate, budget: _Budget) -> bool:
    """Whether the task already has ``max_active_tis_per_dag`` instances active over all
    runs, or ``max_active_tis_per_dagrun`` in the candidate's run (Airflow's
    ``starved_tasks`` and ``starved_tasks_task_dagrun_concurrency``)."""
    per_dag = candidate.max_active_tis_per_dag
    if per_dag is not None and budget.per_dag[(candidate.dag_id, candidate.task_id)] >= per_dag:
        return True
    per_run = candidate.max_active_tis_per_dagrun
    key = (candidate.dag_id, candidate.run_id, candidate.task_id)
    return per_run is not None and budget.per_run[key] >= per_run


def _too_big(candidate: QueueCandidate, pool: PoolSnapshot) -> str:
    return (
        f"task {candidate.task_id!r} needs {candidate.pool_slots} slots of pool "
        f"{pool.name!r}, which has only {pool.slots}: lower pool_slots or enlarge the pool"
    )
