"""Graph walks over a serialized DAG: topological order, ancestors, descendants."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from cluster.dagfiles.serialized import SerializedDag
from cluster.errors import DagDefinitionError


def topological_order(dag: SerializedDag) -> list[str]:
    """Task ids, every task after all of its upstream tasks; ties in definition order.

    :raises DagDefinitionError: when the edges form a cycle.
    """
    pending = {t.task_id: len(t.upstream_task_ids) for t in dag.tasks.values()}
    ready = [task_id for task_id, n in pending.items() if n == 0]
    order: list[str] = []
    while ready:
        task_id = ready.pop(0)
        order.append(task_id)
        for down in dag.tasks[task_id].downstream_task_ids:
            pending[down] -= 1
            if pending[down] == 0:
                ready.append(down)
    if len(order) != len(dag.tasks):
        stuck = sorted(set(dag.tasks) - set(order))
        raise DagDefinitionError(f"DAG {dag.dag_id!r} has a cycle through {stuck}")
    return order


def descendants(dag: SerializedDag, task_id: str) -> set[str]:
    """All tasks downstream of ``task_id``, directly or not."""
    return _reach(task_id, lambda t: dag.tasks[t].downstream_task_ids)


def ancestors(dag: SerializedDag, task_id: str) -> set[str]:
    """All tasks upstream of ``task_id``, directly or not."""
    return _reach(task_id, lambda t: dag.tasks[t].upstream_task_ids)


def _reach(start: str, step: Callable[[str], Iterable[str]]) -> set[str]:
    seen: set[str] = set()
    frontier = list(step(start))
    while frontier:
        task_id = frontier.pop()
        if task_id not in seen:
            seen.add(task_id)
            frontier.extend(step(task_id))
    return seen
