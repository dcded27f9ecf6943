"""Executing one try's user code in this process: render, run with its time limit, classify.

The pool's runner (:mod:`cluster.execution.pool`) calls it in a pool process, inside
the isolation of :mod:`cluster.execution.isolation`; ``tradewind dags test`` calls it
in-process (:mod:`cluster.execution.inprocess`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import signal
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from cluster.errors import (
    TaskDeferred,
    TaskFailedNoRetry,
    TaskRescheduled,
    TaskSkipped,
    TaskTimeout,
    XComTooLarge,
)
from cluster.execution.alert_email import send_alert, wants_email
from cluster.execution.outcome import TryOutcome
from cluster.metastore.triggers import encode_value
from cluster.sdk import BaseOperator
from cluster.sdk.context import execution_context
from cluster.sdk.dataset_events import events_to_emit
from cluster.sdk.deferral import call_task
from cluster.sdk.mappedgroup import upstream_map_indexes
from cluster.sdk.mappedoperator import MappedOperator, mapped_length, mapping_producer_ids
from cluster.sdk.templating import render_template, render_template_fields

log = logging.getLogger("tradewind.task")

#: ``core.max_map_length``'s default, for callers without settings (``tasks test``)
DEFAULT_MAX_MAP_LENGTH = 1024


def execute_try(
    task: BaseOperator,
    context: dict[str, Any],
    *,
    timeout: float | None,
    xcom_max_size: int,
    max_map_length: int = DEFAULT_MAX_MAP_LENGTH,
    resume: tuple[str, dict[str, Any]] | None = None,
    inline_triggers: bool = False,
) -> TryOutcome:
    """Render, execute and classify one try, as Airflow's task runner does.

    A mapped task is first unmapped: the operator of this ``map_index`` is built from
    its expanded arguments and replaces ``context["task"]``.

    :param resume: ``(next_method, next_kwargs)`` of a deferred try that resumes.
    :param inline_triggers: run a deferral's trigger here and resume (``dags test``);
        otherwise the try ends ``deferred`` with its trigger in the outcome.
    """
    method, kwargs = resume if resume is not None else (None, None)
    ti = context["ti"]
    rendered: dict[str, Any] | None = None
    mapping: dict[str, Any] = {}
    with execution_context(context):
        try:
            task = _unmapped(task, context)
            rendered = render_template_fields(task, context)
            _call_all(task, "on_execute_callback", context)
            with _time_limit(timeout):
                task.pre_execute(context)
                result = call_task(
                    task, context, next_method=method, next_kwargs=kwargs, inline=inline_triggers
                )
                task.post_execute(context, result)  # may still set outlet_events' extra
            mapping = _map_length(task, ti, result, max_map_length)
            if result is not None and getattr(task, "do_xcom_push", True):
                ti.xcom_push("return_value", result)
            outcome = _finish(ti, "success", rendered, xcom_max_size)
            events = events_to_emit(task.outlets, context["outlet_events"])
            if events:
                outcome = replace(outcome, dataset_events=events)
        except TaskSkipped as exc:
            log.info("Task skipped: %s", exc)
            outcome = _finish(ti, "skipped", rendered, xcom_max_size)
        except TaskDeferred as exc:
            outcome = _deferred(ti, exc, rendered, xcom_max_size, timeout)
        except TaskRescheduled as exc:
            when = exc.reschedule_date
            at = when.isoformat() if isinstance(when, datetime) else str(when)
            log.info("Rescheduled: next poke at %s", at)
            outcome = TryOutcome(
                state="up_for_reschedule", reschedule_at=at, rendered_fields=rendered
            )
        except TaskFailedNoRetry as exc:
            log.error("Task failed without retry: %s", exc)
            outcome = TryOutcome("failed", False, _one_line(exc), rendered_fields=rendered)
        except TaskTimeout as exc:
            log.error("%s", exc)
            _call_on_kill(task)
            outcome = TryOutcome("failed", True, str(exc), rendered_fields=rendered)
        except Exception as exc:
            log.exception("Task failed with exception")
            outcome = TryOutcome("failed", True, _one_line(exc), rendered_fields=rendered)
        map_index_name = _render_map_index(task, context)
        if map_index_name is not None or mapping:  # a replace costs ~15 µs: only when needed
            outcome = replace(outcome, rendered_map_index=map_index_name, **mapping)
        _run_callbacks(context["task"], context, outcome, ti)
    return outcome


def _deferred(
    ti: Any,
    exc: TaskDeferred,
    rendered: dict[str, Any] | None,
    limit: int,
    execution_timeout: float | None,
) -> TryOutcome:
    """The outcome of a try that deferred: its trigger, serialized, and where it resumes.

    A trigger or kwargs that cannot be stored fail the try now, on the worker, with
    the reason, rather than in the triggerer later.
    """
    try:
        classpath, trigger_kwargs = exc.trigger.serialize()  # type: ignore[attr-defined]
        timeout = exc.timeout
        deferral = {
            "classpath": classpath,
            "kwargs": encode_value(dict(trigger_kwargs)),
            "method": exc.method_name,
            "next_kwargs": encode_value(dict(exc.kwargs or {})),
            "timeout": (
                timeout.total_seconds() if isinstance(timeout, timedelta) else _seconds(timeout)
            ),
            "execution_timeout": execution_timeout,
        }
    except (AttributeError, TypeError, ValueError) as error:
        log.error("Task deferred with a trigger that cannot be stored: %s", error)
        return TryOutcome("failed", True, _one_line(error), rendered_fields=rendered)
    log.info("Pausing task as DEFERRED: %r, resuming in %s", exc.trigger, exc.method_name)
    return replace(_finish(ti, "deferred", rendered, limit), deferral=deferral)


def _seconds(value: Any) -> float | None:
    """A timeout given as a number of seconds (Airflow asks for a timedelta)."""
    return None if value is None else float(value)


def _unmapped(task: BaseOperator, context: dict[str, Any]) -> BaseOperator:
    """The operator this instance runs: ``task`` itself, or a mapped task's instance.

    In a mapped task group, the instance also learns which instances of its upstream
    tasks in the same group it reads (their XComArgs resolve to those only).
    """
    ti = context["ti"]
    if ti.map_index >= 0 and task.task_group is not None and task.task_group.mapped_ancestors():
        ti.upstream_map_indexes = upstream_map_indexes(task, ti.map_index, context)
    if not isinstance(task, MappedOperator):
        return task
    operator, count = task.unmap(context, context["ti"].map_index)
    context["task"] = operator
    context["expanded_ti_count"] = count
    context["map_index_template"] = task.map_index_template
    return operator


def _map_length(task: BaseOperator, ti: Any, result: Any, limit: int) -> dict[str, Any]:
    """For a task whose return value a mapped task expands over: check it (Airflow fails
    the producer of an unmappable value) and give its length for ``task_map``."""
    if ti.map_index >= 0 or task.dag is None:
        return {}
    if task.task_id not in mapping_producer_ids(task.dag):
        return {}
    length, keys = mapped_length(result, limit)
    return {"map_length": length, "map_keys": keys}


def _render_map_index(task: BaseOperator, context: dict[str, Any]) -> str | None:
    """A mapped instance's display name: its ``map_index_template`` (which task code may
    change in the context) rendered after the try, whatever its end."""
    template = context.get("map_index_template")
    if template is None or context["ti"].map_index < 0:
        return None
    try:
        return str(render_template(task, template, context))[:250]
    except Exception:
        log.exception("map_index_template could not be rendered")
        return None


def timeout_seconds(task: BaseOperator) -> float | None:
    """The task's ``execution_timeout`` in seconds, or ``None``."""
    value = task.execution_timeout
    if value is None:
        return None
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def _finish(ti: Any, state: str, rendered: dict[str, Any] | None, limit: int) -> TryOutcome:
    pushed = [(key, _to_json(key, value, limit)) for key, value in ti.pushed_xcoms()]
    return TryOutcome(
        state=state,
        xcoms=pushed,
        skip_downstream=list(ti.skipped_downstream()),
        rendered_fields=rendered,
    )


def _to_json(key: str, value: Any, limit: int) -> str:
    try:
        text = json.dumps(value, default=_json_default)
    except (TypeError, ValueError) as exc:
        raise TaskFailedNoRetry(f"XCom '{key}' is not JSON-serializable: {exc}") from exc
    if len(text) > limit:
        raise XComTooLarge(
            f"XCom '{key}' is {len(text)} bytes, over core.xcom_max_size ({limit}); "
            "store large data elsewhere and push a reference"
        )
    return text


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, set | frozenset | tuple | Sequence):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON-serializable")


def _one_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".splitlines()[0][:1000]


@contextlib.contextmanager
def _time_limit(seconds: float | None) -> Iterator[None]:
    """Raise :class:`TaskTimeout` in the main thread after ``seconds`` (SIGALRM)."""
    if not seconds:
        yield
        return

    def _expired(signum: int, frame: object) -> None:
        raise TaskTimeout(f"Task timed out after {seconds:g} s (execution_timeout)")

    previous = signal.signal(signal.SIGALRM, _expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _call_on_kill(task: BaseOperator) -> None:
    try:
        task.on_kill()
    except Exception:
        log.exception("on_kill failed")


def _run_callbacks(
    task: BaseOperator, context: dict[str, Any], outcome: TryOutcome, ti: Any
) -> None:
    name = {"success": "on_success_callback", "skipped": "on_skipped_callback"}.get(outcome.state)
    if outcome.state == "failed":
        will_retry = outcome.retryable and ti.try_number <= ti.max_tries
        name = "on_retry_callback" if will_retry else "on_failure_callback"
        if wants_email(task, will_retry=will_retry):
            send_alert(task, ti, outcome.message or "", will_retry=will_retry)
    if name is None:
        return
    if outcome.message:
        context["exception"] = outcome.message
    _call_all(task, name, context)


def _call_all(task: BaseOperator, name: str, context: dict[str, Any]) -> None:
    """Call the task's callback(s) ``name``; a callback's error is logged, never fatal."""
    callbacks = getattr(task, name, None)
    if callbacks is None:
        return
    for callback in callbacks if isinstance(callbacks, list | tuple) else [callbacks]:
        try:
            callback(context)
        except Exception:
            log.exception("%s failed", name)
