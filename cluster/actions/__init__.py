"""What users do to DAGs, runs and task instances: trigger, pause, clear, mark, delete.

The CLI, the web UI and the REST API all call these; each is a metastore write that
the scheduler picks up, never a call into the scheduler. Functions take ``session=``
and leave the commit to the caller; every one writes an audit row.
"""

from __future__ import annotations

from cluster.actions.base import Actor, load_dag
from cluster.actions.clearing import clear, select_task_ids
from cluster.actions.dags import backfill, delete_dag, delete_run, set_paused, trigger
from cluster.actions.marking import mark, mark_run, relatives, set_task_instances_state

__all__ = [
    "Actor",
    "backfill",
    "clear",
    "delete_dag",
    "delete_run",
    "load_dag",
    "mark",
    "mark_run",
    "relatives",
    "select_task_ids",
    "set_paused",
    "set_task_instances_state",
    "trigger",
]
