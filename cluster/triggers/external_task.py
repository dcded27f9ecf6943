"""``WorkflowTrigger`` and ``DagStateTrigger``: wait for another DAG's tasks or runs.

They read states through :func:`cluster.sdk.runtime.current_runtime` (the triggerer
installs metastore-backed services, ``dags test`` the in-process ones), in a worker
thread so a slow metastore never stalls the triggerer's event loop; never the metastore
itself (triggers sit below it in the layers).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Collection, Iterable, Sequence
from datetime import datetime
from typing import Any

from cluster.sdk.runtime import current_runtime
from cluster.triggers.base import BaseTrigger, TriggerEvent


def _count(
    dag_id: str, task_ids: Sequence[str] | None, dates: Sequence[datetime], states: Iterable[str]
) -> int:
    return current_runtime().count_external(dag_id, task_ids, list(dates), list(states))


def _group_tasks(dag_id: str, group_id: str) -> list[str]:
    return current_runtime().task_group_task_ids(dag_id, group_id)


class WorkflowTrigger(BaseTrigger):
    """Fire ``{"status": "failed" | "skipped" | "success"}`` once the external tasks (or
    task group, or the DAG runs) at ``execution_dates`` reached such states.

    Unlike Airflow 2.10's, which fires ``success`` at its first check whenever
    ``failed_states`` is set, it waits for the allowed states when nothing failed.
    """

    def __init__(
        self,
        external_dag_id: str,
        execution_dates: list[datetime],
        external_task_ids: Collection[str] | None = None,
        external_task_group_id: str | None = None,
        failed_states: Iterable[str] | None = None,
        skipped_states: Iterable[str] | None = None,
        allowed_states: Iterable[str] | None = None,
        poke_interval: float = 2.0,
        soft_fail: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.external_dag_id = external_dag_id
        self.execution_dates = list(execution_dates)
        self.external_task_ids = list(external_task_ids) if external_task_ids else None
        self.external_task_group_id = external_task_group_id
        self.failed_states = list(failed_states or [])
        self.skipped_states = list(skipped_states or [])
        self.allowed_states = list(allowed_states or ["success"])
        self.poke_interval = poke_interval
        self.soft_fail = soft_fail

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            "cluster.triggers.external_task.WorkflowTrigger",
            {
                "external_dag_id": self.external_dag_id,
                "external_task_ids": self.external_task_ids,
                "external_task_group_id": self.external_task_group_id,
                "failed_states": self.failed_states,
                "skipped_states": self.skipped_states,
                "allowed_states": self.allowed_states,
                "execution_dates": self.execution_dates,
                "poke_interval": self.poke_interval,
                "soft_fail": self.soft_fail,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        task_ids = await self._task_ids()
        while True:
            status = await asyncio.to_thread(self._status, task_ids)
            if status is not None:
                yield TriggerEvent({"status": status})
                return
            await asyncio.sleep(self.poke_interval)

    async def _task_ids(self) -> list[str] | None:
        if self.external_task_group_id:
            return await asyncio.to_thread(
                _group_tasks, self.external_dag_id, self.external_task_group_id
            )
        return self.external_task_ids

    def _status(self, task_ids: list[str] | None) -> str | None:
        dag, dates = self.external_dag_id, self.execution_dates
        if self.failed_states and _count(dag, task_ids, dates, self.failed_states):
            return "failed"
        if self.skipped_states and _count(dag, task_ids, dates, self.skipped_states):
            return "skipped"
        expected = len(dates) * (len(task_ids) if task_ids else 1)
        if _count(dag, task_ids, dates, self.allowed_states) >= expected:
            return "success"
        return None


class DagStateTrigger(BaseTrigger):
    """Fire once every run of ``dag_id`` at ``execution_dates`` is in one of ``states``;
    the payload is the trigger's own serialized form, as Airflow's."""

    def __init__(
        self,
        dag_id: str,
        states: list[str],
        execution_dates: list[datetime],
        poll_interval: float = 5.0,
    ) -> None:
        super().__init__()
        self.dag_id = dag_id
        self.states = [str(s) for s in states]
        self.execution_dates = list(execution_dates)
        self.poll_interval = poll_interval

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            "cluster.triggers.external_task.DagStateTrigger",
            {
                "dag_id": self.dag_id,
                "states": self.states,
                "execution_dates": self.execution_dates,
                "poll_interval": self.poll_interval,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        while True:
            found = await asyncio.to_thread(
                _count, self.dag_id, None, self.execution_dates, self.states
            )
            if found >= len(self.execution_dates):
                yield TriggerEvent(self.serialize())
                return
            await asyncio.sleep(self.poll_interval)
