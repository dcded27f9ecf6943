"""Which downstream tasks a branch or a short-circuit skips, decided like Airflow.

The decision is pure (task ids in, task ids out); the skip itself goes through
``ti.skip_downstream``, which the runner implements in the metastore.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from cluster.errors import TradewindError
from cluster.sdk.baseoperator import BaseOperator


def _as_ids(branch: str | Iterable[str] | None) -> set[str]:
    if branch is None:
        return set()
    if isinstance(branch, str):
        return {branch}
    ids = set(branch)
    if not all(isinstance(i, str) for i in ids):
        raise TradewindError(f"'branch_task_ids' must contain only strings, got {branch!r}")
    return ids


def branch_skips(task: BaseOperator, branch: str | Iterable[str] | None) -> list[str]:
    """Direct downstream tasks of ``task`` that are not followed by ``branch``.

    A group id follows the group's roots. A downstream task that is also downstream
    of a chosen branch (the join of an empty branch) is not skipped.

    :raises TradewindError: when ``branch`` names a task or group that is not in the DAG.
    """
    dag = task._require_dag()
    chosen = _as_ids(branch)
    invalid = {i for i in chosen if i not in dag.task_dict and i not in dag.task_group_dict}
    if invalid:
        raise TradewindError(
            f"'branch_task_ids' must contain only valid task_ids. Invalid tasks found: {invalid}"
        )
    for group_id in [i for i in chosen if i in dag.task_group_dict]:
        chosen.update(t.task_id for t in dag.task_group_dict[group_id].roots)
    followed: set[str] = set()
    for task_id in chosen:
        if task_id in dag.task_dict:
            followed.update(dag.task_dict[task_id].get_flat_relative_ids(upstream=False))
    return sorted(t for t in task.downstream_task_ids if t not in chosen and t not in followed)


def short_circuit_skips(task: BaseOperator, ignore_downstream_trigger_rules: bool) -> list[str]:
    """All descendants (default) or only the direct downstream tasks of ``task``."""
    if ignore_downstream_trigger_rules:
        return sorted(task.get_flat_relative_ids(upstream=False))
    return sorted(task.downstream_task_ids)


def skip(context: dict[str, Any], task_ids: list[str]) -> None:
    if task_ids:
        context["ti"].skip_downstream(task_ids)
