"""``TriggerDagRunOperator``: start a run of another DAG, and optionally wait for it.

Airflow's operator waits by sleeping in its try, or with ``deferrable=True`` by
deferring to a :class:`~cluster.triggers.external_task.DagStateTrigger`, as here. It
also waits like a sensor: in ``poke`` mode the try sleeps and polls; in ``reschedule``
mode (a Tradewind addition) each poke is a short try that gives its worker slot back
between pokes (``up_for_reschedule``). Every poke of a rescheduled trigger derives the
same run id (the default logical date is the first poke's start), so a later poke finds
the run the first one created instead of triggering another.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from cluster.errors import (
    AlreadyExistsError,
    DagDefinitionError,
    ExternalStateError,
    TaskRescheduled,
    TaskSkipped,
)
from cluster.sdk.baseoperator import BaseOperator
from cluster.sdk.dates import utcnow
from cluster.sdk.deferral import default_deferrable
from cluster.sdk.definitions import definition_error
from cluster.sdk.runtime import TriggerRequest, current_runtime
from cluster.triggers.external_task import DagStateTrigger

log = logging.getLogger("tradewind.task")

XCOM_LOGICAL_DATE_ISO = "trigger_logical_date_iso"
XCOM_RUN_ID = "trigger_run_id"


class TriggerDagRunOperator(BaseOperator):
    """Trigger ``trigger_dag_id`` with ``conf``; with ``wait_for_completion``, end when
    the run reaches ``allowed_states`` and fail when it reaches ``failed_states``.

    :param reset_dag_run: clear the run when it exists already instead of failing.
    :param skip_when_already_exists: end skipped when the run exists already.
    :param mode: ``poke`` (wait inside the try) or ``reschedule`` (free the slot between
        polls; a Tradewind addition, as sensors have it).
    """

    template_fields = ("trigger_dag_id", "trigger_run_id", "logical_date", "conf")
    template_fields_renderers = {"conf": "py"}
    ui_color = "#ffefeb"

    def __init__(
        self,
        *,
        trigger_dag_id: str,
        trigger_run_id: str | None = None,
        conf: dict[str, Any] | None = None,
        logical_date: str | datetime | None = None,
        execution_date: str | datetime | None = None,
        reset_dag_run: bool = False,
        wait_for_completion: bool = False,
        poke_interval: float = 60,
        allowed_states: Iterable[str] | None = None,
        failed_states: Iterable[str] | None = None,
        skip_when_already_exists: bool = False,
        deferrable: bool | None = None,
        mode: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.deferrable = default_deferrable() if deferrable is None else deferrable
        self.mode = mode or "poke"
        if self.mode not in ("poke", "reschedule"):
            raise definition_error(
                f"The mode must be one of ['poke', 'reschedule'], received '{self.mode}'.",
                self._site,
            )
        self.poke_interval = float(poke_interval)
        self._sleep: Callable[[float], None] = time.sleep
        self._clock: Callable[[], datetime] = utcnow
        self.trigger_dag_id = trigger_dag_id
        self.trigger_run_id = trigger_run_id
        self.conf = conf
        self.logical_date = logical_date if logical_date is not None else execution_date
        if self.logical_date is not None and not isinstance(self.logical_date, str | datetime):
            raise DagDefinitionError(
                "Expected str or datetime.datetime type for parameter 'logical_date'. "
                f"Got {type(self.logical_date).__name__}"
            )
        self.reset_dag_run = reset_dag_run
        self.wait_for_completion = wait_for_completion
        self.allowed_states = [str(s) for s in allowed_states] if allowed_states else ["success"]
        self.failed_states = (
            [str(s) for s in failed_states] if failed_states is not None else ["failed"]
        )
        self.skip_when_already_exists = skip_when_already_exists
        self._run_id: str | None = None

    def execute(self, context: dict[str, Any]) -> Any:
        ti = context["ti"]
        first = self._first_poke(ti)
        when = self._when(ti)
        try:
            json.dumps(self.conf)
        except TypeError as exc:
            raise DagDefinitionError("conf parameter should be JSON Serializable") from exc
        run_id = str(self.trigger_run_id) if self.trigger_run_id else f"manual__{when.isoformat()}"
        request = TriggerRequest(
            dag_id=self.trigger_dag_id,
            run_id=run_id,
            logical_date=when,
            conf=dict(self.conf or {}),
            by=f"{ti.dag_id}.{ti.task_id}",
            reset=self.reset_dag_run and first,
            existing_ok=not first,
        )
        try:
            run = current_runtime().trigger_dag_run(request)
        except AlreadyExistsError as exc:
            if self.skip_when_already_exists:
                raise TaskSkipped(
                    "Skipping due to skip_when_already_exists is set to True and "
                    "DagRunAlreadyExists"
                ) from exc
            raise
        self._run_id = run.run_id
        logical = run.logical_date or when
        ti.xcom_push(XCOM_LOGICAL_DATE_ISO, logical.isoformat())
        ti.xcom_push(XCOM_RUN_ID, run.run_id)
        if not self.wait_for_completion:
            return None
        if self.deferrable:
            trigger = DagStateTrigger(
                dag_id=self.trigger_dag_id,
                states=self.allowed_states + self.failed_states,
                execution_dates=[logical],
                poll_interval=self.poke_interval,
            )
            self.defer(
                trigger=trigger, method_name="execute_complete", kwargs={"run_id": run.run_id}
            )
        if self.reschedule:
            if first or not self.poke(context):
                raise TaskRescheduled(self._clock() + timedelta(seconds=self.poke_interval))
            return None
        while True:
            self._sleep(self.poke_interval)
            if self.poke(context):
                return None

    def execute_complete(
        self, context: dict[str, Any], event: Any = None, run_id: str | None = None
    ) -> None:
        """The triggered run reached an allowed or a failed state: end as it did."""
        self._run_id = run_id or self._run_id
        if self._run_id is None:
            raise ExternalStateError(f"No DAG run found for DAG {self.trigger_dag_id}")
        if not self.poke(context):
            run = current_runtime().get_dag_run(self.trigger_dag_id, self._run_id)
            state = run.state if run is not None else "deleted"
            raise ExternalStateError(
                f"{self.trigger_dag_id} return {state} which is not in {self.failed_states}"
                f" or {self.allowed_states}"
            )

    @property
    def reschedule(self) -> bool:
        return self.mode == "reschedule"

    def poke(self, context: dict[str, Any]) -> bool:
        """Whether the triggered run reached an allowed state (fails on a failed one)."""
        assert self._run_id is not None, "poke() runs after execute() triggered the run"
        run = current_runtime().get_dag_run(self.trigger_dag_id, self._run_id)
        state = run.state if run is not None else "deleted"
        if state in self.failed_states:
            raise ExternalStateError(f"{self.trigger_dag_id} failed with failed states {state}")
        if state in self.allowed_states:
            log.info("%s finished with allowed state %s", self.trigger_dag_id, state)
            return True
        log.info(
            "Waiting for %s run %s (%s) to become allowed state %s ...",
            self.trigger_dag_id,
            self._run_id,
            state,
            self.allowed_states,
        )
        return False

    def _first_poke(self, ti: Any) -> bool:
        """A rescheduled try after the first continues its trigger instead of repeating it."""
        if not self.reschedule or not self.wait_for_completion:
            return True
        started = getattr(ti, "sensor_started_at", None)
        this_try = getattr(ti, "start_date", None)
        return started is None or this_try is None or started >= this_try

    def _when(self, ti: Any) -> datetime:
        if isinstance(self.logical_date, datetime):
            return self.logical_date
        if isinstance(self.logical_date, str) and self.logical_date:
            return datetime.fromisoformat(self.logical_date)
        if self.reschedule and self.wait_for_completion:
            first = getattr(ti, "sensor_started_at", None) or getattr(ti, "start_date", None)
            if first is not None:
                return first
        return utcnow()
