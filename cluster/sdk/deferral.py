"""``BaseOperator.defer`` and the resumption of a deferred task (Airflow 2.2+).

A task defers by raising :class:`~cluster.errors.TaskDeferred` (``self.defer(...)``):
the runner stores the trigger, gives the slot back, and when the trigger fires runs
the task again in ``method_name`` with the event (:meth:`DeferralMixin.resume_execution`).
A mixin apart from ``BaseOperator`` so that module stays one concept.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from datetime import timedelta
from typing import Any, NoReturn

from cluster.errors import TaskDeferralError, TaskDeferred, TaskFailedNoRetry, TaskSkipped
from cluster.sdk.node import node_options
from cluster.sdk.trigger_base import BaseTrigger, task_end_of

#: ``next_method`` of a try sent back to a worker to fail (trigger failure, timeout)
FAIL_METHOD = "__fail__"

log = logging.getLogger("tradewind.task")


def default_deferrable() -> bool:
    """``operators.default_deferrable`` of this node: ``deferrable=``'s default."""
    return node_options().default_deferrable


class DeferralMixin:
    """What every operator has to defer and resume."""

    def defer(
        self,
        *,
        trigger: Any,
        method_name: str,
        kwargs: dict[str, Any] | None = None,
        timeout: timedelta | None = None,
    ) -> NoReturn:
        """Suspend this task until ``trigger`` fires, then resume in ``method_name``
        (called with ``context`` and ``kwargs``, plus ``event``: the trigger's payload).

        :param timeout: fail the try when no event came within it (retries apply).
        """
        raise TaskDeferred(trigger=trigger, method_name=method_name, kwargs=kwargs, timeout=timeout)

    def resume_execution(
        self, next_method: str, next_kwargs: dict[str, Any] | None, context: dict[str, Any]
    ) -> Any:
        """Run the method a deferred try resumes in; ``__fail__`` fails the try with the
        trigger's error (its traceback goes to the try's log first).

        :raises TaskDeferralError: for ``__fail__``.
        """
        event = (next_kwargs or {}).get("event")
        ended = task_end_of(event)
        if ended is not None:  # the trigger ended the task (Airflow's end_from_trigger)
            return end_from_trigger(context, *ended)
        if next_method == FAIL_METHOD:
            kwargs = next_kwargs or {}
            traceback = kwargs.get("traceback")
            if traceback:
                log.error("Trigger failed:\n%s", "".join(_lines(traceback)))
            raise TaskDeferralError(kwargs.get("error", "Unknown"))
        method = getattr(self, next_method)
        if next_kwargs:
            method = functools.partial(method, **next_kwargs)
        return method(context)


def _lines(traceback: Any) -> list[str]:
    """A stored traceback as lines that each end in a newline."""
    lines = [str(line) for line in traceback] if isinstance(traceback, list) else [str(traceback)]
    return [line if line.endswith("\n") else line + "\n" for line in lines]


def end_from_trigger(context: dict[str, Any], state: str, xcoms: dict[str, Any]) -> None:
    """End the try as a task-end event said: push its XComs, then succeed, skip or fail
    (never retried, as Airflow sets the state from the triggerer)."""
    for key, value in xcoms.items():
        context["ti"].xcom_push(key, value)
    if state == "skipped":
        raise TaskSkipped("Skipped by its trigger")
    if state == "failed":
        raise TaskFailedNoRetry("Failed by its trigger")


def run_trigger_inline(trigger: BaseTrigger, timeout: timedelta | None = None) -> Any:
    """Run ``trigger`` in this thread until its first event; return the event's payload.

    As Airflow 2.10's ``dag.test()`` does; unlike it, ``timeout`` applies (the try then
    fails as it would in a cluster).

    :raises TaskDeferralError: the trigger ended without an event, or timed out.
    """

    async def first_event() -> Any:
        async for event in trigger.run():
            return event
        return None

    async def bounded() -> Any:
        seconds = timeout.total_seconds() if isinstance(timeout, timedelta) else None
        try:
            return await asyncio.wait_for(first_event(), seconds)
        except TimeoutError:
            raise TaskDeferralError("Trigger/execution timeout") from None
        finally:
            await trigger.cleanup()

    log.info("[DAG TEST] running trigger in line: %r", trigger)
    event = asyncio.run(bounded())
    if event is None:
        raise TaskDeferralError("Trigger failure: it ended without an event")
    return event.payload


def call_task(
    task: DeferralMixin,
    context: dict[str, Any],
    *,
    next_method: str | None = None,
    next_kwargs: dict[str, Any] | None = None,
    inline: bool = False,
) -> Any:
    """Run the task's ``execute``, or the method a deferred try resumes in.

    :param inline: run the triggers of deferrals here, resuming each time (``dags test``);
        otherwise :class:`TaskDeferred` propagates for the runner to store the trigger.
    """
    while True:
        try:
            if next_method is None:
                return task.execute(context)  # type: ignore[attr-defined]
            return task.resume_execution(next_method, next_kwargs, context)
        except TaskDeferred as deferred:
            if not inline:
                raise
            payload = run_trigger_inline(deferred.trigger, deferred.timeout)  # type: ignore[arg-type]
            next_method = deferred.method_name
            next_kwargs = {**(deferred.kwargs or {}), "event": payload}
