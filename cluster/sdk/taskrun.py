"""One try of one task, in process: render, execute, push the return value.

The runner wraps this with claiming, heartbeats, timeouts, logs and state changes;
``dags test`` and unit tests call it directly with an in-memory task instance.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cluster.sdk.context import execution_context
from cluster.sdk.deferral import call_task
from cluster.sdk.templating import render_template_fields
from cluster.sdk.xcom_arg import XCOM_RETURN_KEY

if TYPE_CHECKING:
    from cluster.sdk.baseoperator import BaseOperator


def execute_task(
    task: BaseOperator, context: dict[str, Any], *, inline_triggers: bool = True
) -> Any:
    """Render ``task``'s template fields, run it, and push its result like Airflow.

    The result is pushed as ``return_value`` when ``task.do_xcom_push`` is set and it
    is not ``None``. Task-control exceptions (``TaskSkipped``, ``TaskRescheduled`` ...)
    propagate for the caller to turn into states.

    :param inline_triggers: a task that defers has its trigger run here until the first
        event and resumes, as Airflow's ``dag.test()``; ``False`` lets ``TaskDeferred``
        propagate (to test what a task defers on).
    """
    with execution_context(context):
        render_template_fields(task, context)
        task.pre_execute(context)
        result = call_task(task, context, inline=inline_triggers)
        if task.do_xcom_push and result is not None:
            context["ti"].xcom_push(XCOM_RETURN_KEY, result)
        task.post_execute(context, result)
    return result
