"""The operators TaskFlow's ``@task`` flavours build (see :data:`cluster.sdk.decorators.FLAVOURS`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cluster.operators.bash import BashOperator
from cluster.operators.python import (
    BranchExternalPythonOperator,
    BranchPythonVirtualenvOperator,
    ExternalPythonOperator,
    PythonOperator,
    PythonVirtualenvOperator,
    determine_kwargs,
    do_branch,
    do_short_circuit,
)
from cluster.sdk.decorators import push_multiple_outputs
from cluster.sdk.templating import render_template


class PythonDecoratedOperator(PythonOperator):
    custom_operator_name = "@task"

    def execute(self, context: dict[str, Any]) -> Any:
        return push_multiple_outputs(self, context, super().execute(context))


class BranchPythonDecoratedOperator(PythonDecoratedOperator):
    custom_operator_name = "@task.branch"

    def execute(self, context: dict[str, Any]) -> Any:
        return do_branch(self, context, super().execute(context))


class ShortCircuitDecoratedOperator(PythonDecoratedOperator):
    custom_operator_name = "@task.short_circuit"

    def __init__(self, *, ignore_downstream_trigger_rules: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ignore_downstream_trigger_rules = ignore_downstream_trigger_rules

    def execute(self, context: dict[str, Any]) -> Any:
        return do_short_circuit(self, context, super().execute(context))


class BashDecoratedOperator(BashOperator):
    """The function returns the command; it is rendered, then run like ``BashOperator``."""

    custom_operator_name = "@task.bash"
    template_fields = (*BashOperator.template_fields, "op_args", "op_kwargs")

    def __init__(
        self,
        *,
        python_callable: Callable[..., Any],
        op_args: list[Any] | None = None,
        op_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.pop("multiple_outputs", None)
        super().__init__(bash_command="SET_DURING_EXECUTION", **kwargs)
        self.python_callable = python_callable
        self.op_args = list(op_args or [])
        self.op_kwargs = dict(op_kwargs or {})

    def execute(self, context: dict[str, Any]) -> Any:
        kwargs = determine_kwargs(self.python_callable, self.op_args, {**context, **self.op_kwargs})
        command = self.python_callable(*self.op_args, **kwargs)
        if not isinstance(command, str) or not command.strip():
            raise TypeError(
                "The returned value from the TaskFlow callable must be a non-empty string."
            )
        self.bash_command = render_template(self, command, context)
        return super().execute(context)


class PythonVirtualenvDecoratedOperator(PythonVirtualenvOperator):
    custom_operator_name = "@task.virtualenv"

    def execute(self, context: dict[str, Any]) -> Any:
        return push_multiple_outputs(self, context, super().execute(context))


class ExternalPythonDecoratedOperator(ExternalPythonOperator):
    custom_operator_name = "@task.external_python"

    def execute(self, context: dict[str, Any]) -> Any:
        return push_multiple_outputs(self, context, super().execute(context))


class BranchPythonVirtualenvDecoratedOperator(BranchPythonVirtualenvOperator):
    custom_operator_name = "@task.branch_virtualenv"


class BranchExternalPythonDecoratedOperator(BranchExternalPythonOperator):
    custom_operator_name = "@task.branch_external_python"
