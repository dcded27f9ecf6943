"""The loop's side of dynamic task mapping: which rows a run starts with, the lengths
the policy needs, and writing an expansion.

The decisions are :mod:`cluster.policy.mapping`'s; this module only reads and writes.
Nothing here runs for a DAG without mapped tasks (``SerializedDag.has_mapping``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from itertools import islice
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, or_, select, update
from sqlalchemy.orm import Session

from cluster.dagfiles.serialized import SerializedDag, SerializedTask
from cluster.metastore.models import TASK_INSTANCE, TASK_MAP, XCOM
from cluster.policy.changes import Expansion, InstanceKey, Revision, instance_key, key_of
from cluster.policy.mapping import initial_map_indexes, needs_expansion, producers
from cluster.policy.readiness import WAITING, InstanceSnapshot
from cluster.policy.runs import RunSnapshot
from cluster.states import FINISHED, TaskState

_TI = TASK_INSTANCE.c
_RUN = (_TI.dag_id == bindparam("dag_id"), _TI.run_id == bindparam("run_id"))
#: every instance of the run but the settled expanded ones of ``counted`` tasks
_LIVE_ROWS = select(_TI.task_id, _TI.map_index, _TI.state, _TI.next_try_at).where(
    *_RUN,
    or_(
        _TI.state.in_(sorted(str(s) for s in WAITING)),
        _TI.map_index < 0,
        _TI.task_id.not_in(bindparam("counted", expanding=True)),
    ),
)
#: those settled expanded instances, counted by task and state (with their top index)
_SETTLED_COUNTS = (
    select(_TI.task_id, _TI.state, func.count(), func.max(_TI.map_index))
    .where(
        *_RUN,
        _TI.state.not_in(sorted(str(s) for s in WAITING)),
        _TI.map_index >= 0,
        _TI.task_id.in_(bindparam("counted", expanding=True)),
    )
    .group_by(_TI.task_id, _TI.state)
)
_STATES = {str(s): s for s in TaskState}
_PUSHED_LENGTHS = select(TASK_MAP.c.task_id, TASK_MAP.c.length).where(
    TASK_MAP.c.dag_id == bindparam("dag_id"),
    TASK_MAP.c.run_id == bindparam("run_id"),
    TASK_MAP.c.task_id.in_(bindparam("task_ids", expanding=True)),
    TASK_MAP.c.map_index < 0,
)
_MAPPED_VALUES = (
    select(XCOM.c.task_id, func.count())
    .where(
        XCOM.c.dag_id == bindparam("dag_id"),
        XCOM.c.run_id == bindparam("run_id"),
        XCOM.c.task_id.in_(bindparam("task_ids", expanding=True)),
        XCOM.c.map_index >= 0,
        XCOM.c.key == "return_value",
    )
    .group_by(XCOM.c.task_id)
)
_STALE_XCOMS = delete(XCOM).where(
    XCOM.c.dag_id == bindparam("dag_id"),
    XCOM.c.run_id == bindparam("run_id"),
    XCOM.c.task_id == bindparam("task_id"),
    XCOM.c.map_index.in_(bindparam("map_indexes", expanding=True)),
)
_TO_FIRST_INDEX = (
    update(TASK_INSTANCE)
    .where(
        TASK_INSTANCE.c.dag_id == bindparam("k_dag_id"),
        TASK_INSTANCE.c.run_id == bindparam("k_run_id"),
        TASK_INSTANCE.c.task_id == bindparam("k_task_id"),
        TASK_INSTANCE.c.map_index == -1,
        TASK_INSTANCE.c.state == TaskState.NONE,
    )
    .values(map_index=0)
)


def instance_row(
    dag_id: str, run: RunSnapshot, task: SerializedTask, weight: int, map_index: int
) -> dict[str, Any]:
    """A new ``none`` instance of ``task`` (with its run's date: the queueing order)."""
    return {
        "dag_id": dag_id,
        "run_id": run.run_id,
        "run_logical_date": run.logical_date,
        "task_id": task.task_id,
        "map_index": map_index,
        "try_number": 0,
        "max_tries": task.retries,
        "state": TaskState.NONE,
        "pool": task.pool,
        "pool_slots": task.pool_slots,
        "queue": task.queue,
        "operator": task.operator,
        "priority_weight": weight,
    }


def initial_rows(
    dag: SerializedDag, weights: Mapping[str, int], run: RunSnapshot, task_ids: Iterable[str]
) -> list[dict[str, Any]]:
    """The rows a run starts with: one per task, or ``0..n-1`` for a literal mapping."""
    rows: list[dict[str, Any]] = []
    for task_id in task_ids:
        task = dag.tasks[task_id]
        weight = weights.get(task_id, task.priority_weight)
        indexes = initial_map_indexes(dag, task_id) if dag.has_mapping else (-1,)
        rows.extend(instance_row(dag.dag_id, run, task, weight, i) for i in indexes)
    return rows


def create_instances(
    session: Session,
    dag: SerializedDag,
    weights: Mapping[str, int],
    run: RunSnapshot,
    task_ids: Iterable[str],
) -> None:
    """Insert the initial rows of those of ``task_ids`` the run has no instance of."""
    present = select(TASK_INSTANCE.c.task_id).where(
        TASK_INSTANCE.c.dag_id == dag.dag_id, TASK_INSTANCE.c.run_id == run.run_id
    )
    existing = set(session.scalars(present))
    rows = initial_rows(dag, weights, run, (t for t in task_ids if t not in existing))
    if rows:
        session.execute(insert(TASK_INSTANCE), rows)


def wants_lengths(dag: SerializedDag, instances: Mapping[InstanceKey, InstanceSnapshot]) -> bool:
    """Whether any waiting instance may need a pushed length to be decided: a placeholder
    to expand, an expanded instance (its task's length may have changed since: see
    ``readiness._revise``), or an instance in a mapped group (which upstream instances
    count)."""
    return any(
        instance.state in WAITING and needs_expansion(dag, instance.task_id)
        for instance in instances.values()
    )


def load_lengths(
    session: Session,
    dag: SerializedDag,
    run_id: str,
    instances: Mapping[InstanceKey, InstanceSnapshot],
) -> dict[str, int]:
    """The lengths the run's producers pushed: from ``task_map`` for a plain producer; for
    an expanded one, how many of its instances pushed a return value, once all of
    them finished (Airflow's ``get_task_map_length``). At most two indexed reads."""
    wanted = producers(dag)
    if not wanted:
        return {}
    params = {"dag_id": dag.dag_id, "run_id": run_id}
    expanded = sorted(t for t in wanted if needs_expansion(dag, t))
    plain = sorted(wanted - set(expanded))
    lengths: dict[str, int] = {}
    connection = session.connection()
    if plain:
        rows = connection.execute(_PUSHED_LENGTHS, {**params, "task_ids": plain}).all()
        lengths.update({task_id: length for task_id, length in rows})
    finished = [t for t in expanded if _all_finished(t, instances)]
    if finished:
        rows = connection.execute(_MAPPED_VALUES, {**params, "task_ids": finished}).all()
        counts = dict(rows)
        lengths.update({t: counts.get(t, 0) for t in finished})
    return lengths


def _all_finished(task_id: str, instances: Mapping[InstanceKey, InstanceSnapshot]) -> bool:
    states = [i.state for i in instances.values() if i.task_id == task_id]
    return bool(states) and all(s in FINISHED for s in states)


def write_expansions(
    session: Session,
    dag: SerializedDag,
    weights: Mapping[str, int],
    run: RunSnapshot,
    expansions: list[Expansion],
) -> set[str]:
    """Expand each placeholder: it becomes index 0 (compare-and-set on ``none``), the
    others are inserted. Returns the tasks expanded here; one that lost its race (the
    placeholder moved meanwhile) is left to the next iteration."""
    done: set[str] = set()
    connection = session.connection()
    for expansion in expansions:
        params = {"k_dag_id": dag.dag_id, "k_run_id": run.run_id, "k_task_id": expansion.task_id}
        if connection.execute(_TO_FIRST_INDEX, params).rowcount != 1:
            continue
        task = dag.tasks[expansion.task_id]
        weight = weights.get(task.task_id, task.priority_weight)
        rows = [instance_row(dag.dag_id, run, task, weight, i) for i in range(1, expansion.count)]
        if rows:
            connection.execute(insert(TASK_INSTANCE), rows)
        done.add(expansion.task_id)
    return done


def write_revisions(
    session: Session,
    dag: SerializedDag,
    weights: Mapping[str, int],
    run: RunSnapshot,
    revisions: list[Revision],
) -> None:
    """Insert the ``none`` instances revised mapped tasks gained, and delete the XComs
    of the waiting ones they lose (the state changes to ``removed`` are the decision's):
    those values are from an earlier try, which its next claim would have deleted."""
    rows: list[dict[str, Any]] = []
    connection = session.connection()
    for revision in revisions:
        task = dag.tasks[revision.task_id]
        weight = weights.get(task.task_id, task.priority_weight)
        rows.extend(instance_row(dag.dag_id, run, task, weight, i) for i in revision.added)
        if revision.removed:
            params = {"dag_id": dag.dag_id, "run_id": run.run_id, "task_id": task.task_id}
            connection.execute(_STALE_XCOMS, {**params, "map_indexes": list(revision.removed)})
    if rows:
        connection.execute(insert(TASK_INSTANCE), rows)


def load_summarized(
    session: Session, dag: SerializedDag, run_id: str
) -> dict[InstanceKey, InstanceSnapshot] | None:
    """The run's instances as the policy needs them, without a row per settled instance
    of a mapped task: those are counted in SQL (``None``: load every row instead).

    A run of a task mapped 1,000 times was read whole at every iteration, and each row
    costs the loop about as much as deciding it (the driver decodes it in Python). The
    policy decides only the waiting instances (``none``, retry, reschedule); of the
    others, finished or scheduled, queued, running and deferred, it reads only how many
    are in which state. Which index holds which state matters inside mapped task
    groups (whose tasks keep a row each) and when a waiting instance may revise its
    task's length (``readiness._revise`` removes scheduled instances past it): a task
    with both waiting and scheduled instances is read row by row. The counted
    instances are given the map indexes no waiting instance holds, in any order. Map
    indexes are always ``0..n-1`` (expansions and revisions fill the range, removed
    ones keep their row); a task whose are not is read row by row too.
    """
    counted = sorted(
        t
        for t, task in dag.tasks.items()
        if task.mapping is not None and t not in dag.mapped_groups
    )
    if not counted:
        return None
    params = {"dag_id": dag.dag_id, "run_id": run_id, "counted": counted}
    connection = session.connection()
    instances: dict[InstanceKey, InstanceSnapshot] = {}
    live: dict[str, set[int]] = defaultdict(set)
    for task_id, map_index, state, ready_at in connection.execute(_LIVE_ROWS, params):
        instances[key_of(task_id, map_index)] = InstanceSnapshot(
            task_id, _STATES[state], ready_at, map_index
        )
        live[task_id].add(map_index)
    settled: dict[str, list[tuple[TaskState, int]]] = defaultdict(list)
    top: dict[str, int] = {}
    for task_id, state, count, highest in connection.execute(_SETTLED_COUNTS, params):
        settled[task_id].append((_STATES[state], count))
        top[task_id] = max(top.get(task_id, -1), highest)
    for task_id, counts in settled.items():
        own = {i for i in live[task_id] if i >= 0}
        total = sum(n for _, n in counts) + len(own)
        if max(top[task_id], *own, -1) != total - 1:
            return None
        if own and any(state is TaskState.SCHEDULED for state, _ in counts):
            return None
        free = iter(sorted(set(range(total)) - own))
        for state, count in counts:
            for map_index in islice(free, count):
                instances[(task_id, map_index)] = InstanceSnapshot(task_id, state, None, map_index)
    return instances


def task_ids_of(instances: Mapping[InstanceKey, InstanceSnapshot]) -> set[str]:
    """The tasks that have at least one instance."""
    return {instance_key(k)[0] for k in instances}
