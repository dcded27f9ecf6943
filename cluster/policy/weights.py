"""Effective priority weights: which scheduled instances go first when slots are short."""

from __future__ import annotations

from cluster.dagfiles.serialized import SerializedDag
from cluster.errors import DagDefinitionError
from cluster.policy.graph import ancestors, descendants


def effective_priority_weights(dag: SerializedDag) -> dict[str, int]:
    """Each task's weight under its ``weight_rule``, as Airflow computes it.

    ``downstream``: its own weight plus every descendant's (each counted once), so
    long chains start first; ``upstream``: its own plus every ancestor's, so runs
    that are far along finish first; ``absolute``: its own weight.

    :raises DagDefinitionError: for an unknown weight rule.
    """
    weights: dict[str, int] = {}
    for task_id, task in dag.tasks.items():
        if task.weight_rule == "absolute":
            related: set[str] = set()
        elif task.weight_rule == "downstream":
            related = descendants(dag, task_id)
        elif task.weight_rule == "upstream":
            related = ancestors(dag, task_id)
        else:
            raise DagDefinitionError(
                f"task {task_id!r} has unknown weight_rule {task.weight_rule!r}: "
                "use downstream, upstream or absolute"
            )
        weights[task_id] = task.priority_weight + sum(dag.tasks[t].priority_weight for t in related)
    return weights
