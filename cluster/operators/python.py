"""``PythonOperator`` and its branching kin, with Airflow's context injection.

A callable receives the context keys its signature names (``ds``, ``ti``, ...), or the
whole context when it takes ``**kwargs``, plus ``op_kwargs``; ``op_args`` go first.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any

from cluster.operators.branching import branch_skips, short_circuit_skips, skip
from cluster.sdk.baseoperator import BaseOperator

log = logging.getLogger("tradewind.task")


def determine_kwargs(
    fn: Callable[..., Any], args: Collection[Any], context: Mapping[str, Any]
) -> dict[str, Any]:
    """The keyword arguments ``fn`` gets from ``context`` (Airflow's ``KeywordParameters``).

    :raises ValueError: when a name filled by ``args`` positionally is also a context key.
    """
    try:
        names, takes_any = _cached_parameters(fn)
    except TypeError:  # an unhashable callable (or one without a signature: raises again)
        names, takes_any = _parameters(fn)
    for name in names[: len(args)]:
        if name in context:
            raise ValueError(
                f"The key {name!r} in args is a part of kwargs and therefore reserved."
            )
    if takes_any:
        return dict(context)
    return {name: context[name] for name in names if name in context}


def _parameters(fn: Callable[..., Any]) -> tuple[tuple[str, ...], bool]:
    """``fn``'s parameter names and whether it takes ``**kwargs``."""
    parameters = inspect.signature(fn).parameters
    return tuple(parameters), any(p.kind is p.VAR_KEYWORD for p in parameters.values())


#: a pool worker calls the same callables over and over, and ``inspect.signature`` is slow
_cached_parameters = lru_cache(maxsize=1024)(_parameters)


class PythonOperator(BaseOperator):
    """Call ``python_callable(*op_args, **op_kwargs)``; its return value is the XCom.

    :param templates_dict: rendered, then passed as the ``templates_dict`` context key.
    """

    template_fields: Sequence[str] = ("templates_dict", "op_args", "op_kwargs")
    template_fields_renderers = {"templates_dict": "json", "op_args": "py", "op_kwargs": "py"}
    ui_color = "#ffefeb"
    shallow_copy_attrs = ("python_callable", "op_kwargs")

    def __init__(
        self,
        *,
        python_callable: Callable[..., Any],
        op_args: Collection[Any] | None = None,
        op_kwargs: Mapping[str, Any] | None = None,
        templates_dict: dict[str, Any] | None = None,
        templates_exts: list[str] | None = None,
        show_return_value_in_logs: bool = True,
        **kwargs: Any,
    ) -> None:
        if not callable(python_callable):
            raise TypeError("`python_callable` param must be callable")
        super().__init__(**kwargs)
        self.python_callable = python_callable
        self.op_args = list(op_args or [])
        self.op_kwargs = dict(op_kwargs or {})
        self.templates_dict = templates_dict
        if templates_exts:
            self.template_ext = templates_exts
        self.show_return_value_in_logs = show_return_value_in_logs

    def execute(self, context: dict[str, Any]) -> Any:
        merged = {**context, **self.op_kwargs}
        if self.templates_dict is not None:
            merged["templates_dict"] = self.templates_dict
        kwargs = determine_kwargs(self.python_callable, self.op_args, merged)
        result = self.python_callable(*self.op_args, **kwargs)
        if self.show_return_value_in_logs:
            log.info("Done. Returned value was: %s", result)
        else:
            log.info("Done. Returned value not shown")
        return result


class BranchPythonOperator(PythonOperator):
    """The callable returns the task id(s) to follow; other direct downstream tasks skip."""

    def execute(self, context: dict[str, Any]) -> Any:
        branch = super().execute(context)
        return do_branch(self, context, branch)


def do_branch(
    task: BaseOperator, context: dict[str, Any], branch: str | Iterable[str] | None
) -> Any:
    """Skip what ``branch`` does not follow, through ``ti.skip_downstream``."""
    to_skip = branch_skips(task, branch)
    log.info("Branch into %s; skipping %s", branch, to_skip)
    skip(context, to_skip)
    return branch


class ShortCircuitOperator(PythonOperator):
    """A falsy result skips downstream: all descendants (default) or the direct ones.

    :param ignore_downstream_trigger_rules: ``True`` skips every descendant regardless
        of its trigger rule; ``False`` skips only the direct downstream tasks and lets
        trigger rules decide the rest.
    """

    def __init__(self, *, ignore_downstream_trigger_rules: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ignore_downstream_trigger_rules = ignore_downstream_trigger_rules

    def execute(self, context: dict[str, Any]) -> Any:
        condition = super().execute(context)
        return do_short_circuit(self, context, condition)


def do_short_circuit(task: BaseOperator, context: dict[str, Any], condition: Any) -> Any:
    if condition:
        log.info("Condition result is %s; proceeding with downstream tasks", condition)
        return condition
    ignore = getattr(task, "ignore_downstream_trigger_rules", True)
    to_skip = short_circuit_skips(task, ignore)
    log.info("Condition result is %s; skipping %s", condition, to_skip)
    skip(context, to_skip)
    return condition
