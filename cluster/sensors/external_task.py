"""``ExternalTaskSensor`` and ``ExternalTaskMarker``: dependencies between DAGs.

The sensor waits for tasks (one, a list, or a task group) or the whole run of another
DAG at the same logical date, or one shifted by ``execution_delta`` /
``execution_date_fn``; it reads their states through the runtime
(:func:`cluster.sdk.runtime.current_runtime`), never the metastore. The marker does
nothing when it runs: clearing it recursively clears the task it names in the other
DAG (``cluster.actions.clear`` follows markers up to ``recursion_depth`` levels).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Collection, Iterable
from datetime import datetime, timedelta
from typing import Any

from cluster.errors import DagDefinitionError, ExternalStateError, TaskSkipped
from cluster.operators.empty import EmptyOperator
from cluster.sdk.deferral import default_deferrable
from cluster.sdk.runtime import current_runtime
from cluster.sensors.base import BaseSensorOperator
from cluster.states import DagRunState, TaskState
from cluster.triggers.external_task import WorkflowTrigger

log = logging.getLogger("tradewind.task")

TASK_STATES = frozenset(str(s) for s in TaskState)
DAG_STATES = frozenset(str(s) for s in DagRunState)
#: the marker's default: the logical date of the run it is in
DEFAULT_MARKER_DATE = "{{ logical_date.isoformat() }}"


class ExternalTaskSensor(BaseSensorOperator):
    """Wait for tasks, a task group or a run of ``external_dag_id`` (Airflow's semantics:
    any of them in ``failed_states`` fails, in ``skipped_states`` skips, all of them in
    ``allowed_states`` succeeds).

    :raises DagDefinitionError: for overlapping or unknown states, or conflicting targets.
    """

    template_fields = ("external_dag_id", "external_task_id", "external_task_ids")
    ui_color = "#4db7db"

    def __init__(
        self,
        *,
        external_dag_id: str,
        external_task_id: str | None = None,
        external_task_ids: Collection[str] | None = None,
        external_task_group_id: str | None = None,
        allowed_states: Iterable[str] | None = None,
        skipped_states: Iterable[str] | None = None,
        failed_states: Iterable[str] | None = None,
        execution_delta: timedelta | None = None,
        execution_date_fn: Callable[..., Any] | None = None,
        check_existence: bool = False,
        poll_interval: float = 2.0,
        deferrable: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.deferrable = default_deferrable() if deferrable is None else deferrable
        self.allowed_states = [str(s) for s in allowed_states] if allowed_states else ["success"]
        self.skipped_states = [str(s) for s in skipped_states] if skipped_states else []
        self.failed_states = [str(s) for s in failed_states] if failed_states else []
        everything = self.allowed_states + self.skipped_states + self.failed_states
        if len(set(everything)) != len(everything):
            raise DagDefinitionError(
                "Duplicate values provided across allowed_states, skipped_states and failed_states."
            )
        ids = list(external_task_ids) if external_task_ids else None
        if external_task_id is not None and ids is not None:
            raise DagDefinitionError(
                "Only one of `external_task_id` or `external_task_ids` may be provided to "
                "ExternalTaskSensor; use external_task_id or external_task_ids or "
                "external_task_group_id."
            )
        if external_task_id is not None:
            ids = [external_task_id]
        if external_task_group_id is not None and ids is not None:
            raise DagDefinitionError(
                "Only one of `external_task_group_id` or `external_task_ids` may be provided "
                "to ExternalTaskSensor; use external_task_id or external_task_ids or "
                "external_task_group_id."
            )
        valid = TASK_STATES if ids or external_task_group_id else DAG_STATES
        if not set(everything) <= valid:
            raise DagDefinitionError(
                "Valid values for `allowed_states`, `skipped_states` and `failed_states` "
                f"here are: {sorted(valid)}"
            )
        if execution_delta is not None and execution_date_fn is not None:
            raise DagDefinitionError(
                "Only one of `execution_delta` or `execution_date_fn` may be provided to "
                "ExternalTaskSensor; not both."
            )
        self.execution_delta = execution_delta
        self.execution_date_fn = execution_date_fn
        self.external_dag_id = external_dag_id
        self.external_task_id = external_task_id
        self.external_task_ids = ids
        self.external_task_group_id = external_task_group_id
        self.check_existence = check_existence
        self.poll_interval = poll_interval

    def logical_dates(self, context: dict[str, Any]) -> list[datetime]:
        """The other DAG's logical dates this try waits for."""
        when: datetime = context["logical_date"]
        if self.execution_delta is not None:
            return [when - self.execution_delta]
        if self.execution_date_fn is not None:
            result = _call_date_fn(self.execution_date_fn, when, context)
            return list(result) if isinstance(result, list | tuple) else [result]
        return [when]

    def execute(self, context: dict[str, Any]) -> Any:
        """Poke (in ``mode``), or with ``deferrable`` hand the wait to a
        :class:`WorkflowTrigger`, bounded by ``execution_timeout`` as in Airflow. Unlike
        Airflow 2.10's, the trigger also watches ``failed_states`` and ``skipped_states``."""
        if not self.deferrable:
            return super().execute(context)
        trigger = WorkflowTrigger(
            external_dag_id=self.external_dag_id,
            external_task_group_id=self.external_task_group_id,
            external_task_ids=self.external_task_ids,
            execution_dates=self.logical_dates(context),
            allowed_states=self.allowed_states,
            failed_states=self.failed_states,
            skipped_states=self.skipped_states,
            poke_interval=self.poll_interval,
            soft_fail=self.soft_fail,
        )
        timeout = self.execution_timeout
        self.defer(
            trigger=trigger,
            method_name="execute_complete",
            timeout=timeout if isinstance(timeout, timedelta) or timeout is None else None,
        )

    def execute_complete(self, context: dict[str, Any], event: Any = None) -> None:
        """The trigger saw the external tasks finish: succeed, skip or fail as they did."""
        status = event.get("status") if isinstance(event, dict) else None
        if status == "success":
            log.info("External tasks %s has executed successfully.", self.external_task_ids)
            return
        if status == "skipped":
            raise TaskSkipped("External job has skipped skipping.")
        if self.soft_fail:
            raise TaskSkipped("External job has failed skipping.")
        raise ExternalStateError(f"{self._describe()} failed.")

    def poke(self, context: dict[str, Any]) -> bool:
        dates = self.logical_dates(context)
        task_ids = self._task_ids()
        target = self._describe()
        log.info("Poking for %s on %s ... ", target, ",".join(d.isoformat() for d in dates))
        runtime = current_runtime()
        if self.external_task_ids and len(set(self.external_task_ids)) < len(
            self.external_task_ids
        ):
            raise DagDefinitionError("Duplicate task_ids passed in external_task_ids parameter")
        if self.failed_states and runtime.count_external(
            self.external_dag_id, task_ids, dates, self.failed_states
        ):
            if self.soft_fail:
                raise TaskSkipped(f"{target} failed. Skipping due to soft_fail.")
            raise ExternalStateError(f"{target} failed.")
        if self.skipped_states and runtime.count_external(
            self.external_dag_id, task_ids, dates, self.skipped_states
        ):
            raise TaskSkipped(f"{target} reached a state in our states-to-skip-on list. Skipping.")
        allowed = runtime.count_external(self.external_dag_id, task_ids, dates, self.allowed_states)
        expected = len(dates) * (len(task_ids) if task_ids is not None else 1)
        return allowed == expected

    def _task_ids(self) -> list[str] | None:
        if self.external_task_group_id is not None:
            return current_runtime().task_group_task_ids(
                self.external_dag_id, self.external_task_group_id
            )
        return list(self.external_task_ids) if self.external_task_ids else None

    def _describe(self) -> str:
        if self.external_task_ids:
            return f"the external tasks {self.external_task_ids} in DAG {self.external_dag_id}"
        if self.external_task_group_id:
            return (
                f"the external task_group '{self.external_task_group_id}' "
                f"in DAG '{self.external_dag_id}'"
            )
        return f"the external DAG {self.external_dag_id}"


def _call_date_fn(fn: Callable[..., Any], when: datetime, context: dict[str, Any]) -> Any:
    """Airflow's calling convention: the logical date, then the context entries the
    function names (all of them with ``**kwargs``), and ``context`` itself."""
    params = inspect.signature(fn).parameters
    extra = {k: v for k, v in context.items() if k not in ("execution_date", "logical_date")}
    extra["context"] = context
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        names = list(params)[1:]
        extra = {k: v for k, v in extra.items() if k in names}
    return fn(when, **extra)


class ExternalTaskMarker(EmptyOperator):
    """Marks that ``external_task_id`` of ``external_dag_id`` depends on this task: a
    recursive clear of this task clears that one too, with its downstream tasks.

    :param execution_date: the other run's logical date (a template; by default this
        run's logical date).
    :param recursion_depth: how many markers deep a clear may go (Airflow's guard
        against cycles).
    """

    template_fields = ("external_dag_id", "external_task_id", "execution_date")
    ui_color = "#4db7db"

    def __init__(
        self,
        *,
        external_dag_id: str,
        external_task_id: str,
        execution_date: str | datetime | None = DEFAULT_MARKER_DATE,
        recursion_depth: int = 10,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.external_dag_id = external_dag_id
        self.external_task_id = external_task_id
        if isinstance(execution_date, datetime):
            self.execution_date = execution_date.isoformat()
        elif isinstance(execution_date, str):
            self.execution_date = execution_date
        else:
            raise DagDefinitionError(
                "Expected str or datetime.datetime type for execution_date. "
                f"Got {type(execution_date)}"
            )
        if recursion_depth <= 0:
            raise DagDefinitionError("recursion_depth should be a positive integer")
        self.recursion_depth = recursion_depth

    def serialized_extra(self) -> dict[str, Any]:
        return {
            "external_marker": {
                "dag_id": self.external_dag_id,
                "task_id": self.external_task_id,
                "execution_date": self.execution_date,
                "recursion_depth": self.recursion_depth,
            }
        }
