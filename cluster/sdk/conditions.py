"""``@task.run_if`` and ``@task.skip_if`` (Airflow 2.10): a condition on the context,
checked on the worker just before the task runs, that skips the try.

The condition becomes part of the task's ``pre_execute`` hook (after any hook already
given), so it runs where and when Airflow runs it: inside the try, with the rendered
context, and a skip ends the instance ``skipped`` with the message in its log.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from cluster.errors import TaskSkipped

#: Airflow's message when the condition gives none
DEFAULT_SKIP_MESSAGE = "Task was skipped due to condition."

Condition = Callable[[dict[str, Any]], Any]
Hook = Callable[[dict[str, Any]], Any]


def skipping_hook(condition: Condition, message: str, *, skip_when: bool) -> Hook:
    """A ``pre_execute`` hook that skips the try when ``condition`` is ``skip_when``.

    The condition returns a bool, or ``(bool, message)`` whose message, when not empty,
    replaces ``message``.
    """

    @functools.wraps(condition)
    def pre_execute(context: dict[str, Any]) -> None:
        verdict = condition(context)
        reason = message
        if isinstance(verdict, tuple):
            verdict, given = verdict
            reason = given or message
        if bool(verdict) is skip_when:
            raise TaskSkipped(reason)

    return pre_execute


def chained(first: Hook | None, then: Hook) -> Hook:
    """One hook that calls ``first`` (when given), then ``then``."""
    if first is None:
        return then

    def pre_execute(context: dict[str, Any]) -> None:
        first(context)
        then(context)

    return pre_execute


def conditional(
    name: str, condition: Condition, skip_message: str | None, *, skip_when: bool
) -> Callable[[Any], Any]:
    """The decorator ``@task.<name>(condition)`` applies to a ``@task`` function.

    :raises TypeError: over anything but a ``@task`` (as in Airflow: ``@task`` must come
        first, below it).
    """
    hook = skipping_hook(condition, skip_message or DEFAULT_SKIP_MESSAGE, skip_when=skip_when)

    def decorate(decorated: Any) -> Any:
        kwargs = getattr(decorated, "kwargs", None)
        if not getattr(decorated, "is_task_decorator", False) or kwargs is None:
            raise TypeError(
                f"{name} can only be used with task. decorate with @task before @{name}."
            )
        kwargs["pre_execute"] = chained(kwargs.get("pre_execute"), hook)
        return decorated

    return decorate


def run_if(condition: Condition, skip_message: str | None = None) -> Callable[[Any], Any]:
    """``@task.run_if(condition)``: skip the try unless ``condition(context)`` holds."""
    return conditional("run_if", condition, skip_message, skip_when=False)


def skip_if(condition: Condition, skip_message: str | None = None) -> Callable[[Any], Any]:
    """``@task.skip_if(condition)``: skip the try when ``condition(context)`` holds."""
    return conditional("skip_if", condition, skip_message, skip_when=True)
