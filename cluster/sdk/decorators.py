"""TaskFlow: ``@task`` and its flavours (``python``, ``bash``, ``branch``,
``short_circuit``, ``sensor``).

Calling a decorated function inside a DAG creates one operator and returns its
:class:`XComArg`; XComArgs passed as arguments become edges and are resolved at run
time. Task ids repeat as ``f``, ``f__1``, ``f__2`` like Airflow's.

Each flavour's operator lives beside the operator it extends (``cluster.operators``,
``cluster.sensors``), and those import the SDK's ``BaseOperator``: so the SDK names the
classes in :data:`FLAVOURS` instead of importing them, as Airflow's providers register
their decorators. A flavour's module is imported when a DAG file first uses it, which
also keeps ``import cluster.sdk`` light.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import re
import typing
from collections.abc import Callable
from typing import Any

from cluster.errors import MappingTypeError, MappingValueError
from cluster.sdk.conditions import run_if, skip_if
from cluster.sdk.dagcontext import DagContext
from cluster.sdk.definitions import definition_error, user_site
from cluster.sdk.expandinput import DictOfListsExpandInput, ExpandInput, is_mappable
from cluster.sdk.mappedoperator import (
    MappedOperator,
    check_expand_input,
    list_of_dicts,
    prevent_duplicates,
)
from cluster.sdk.trigger_rule import TriggerRule
from cluster.sdk.xcom_arg import XComArg

#: ``@task.<flavour>`` → ``(module, operator class)``, resolved on first use
FLAVOURS: dict[str, tuple[str, str]] = {
    "python": ("cluster.operators.taskflow", "PythonDecoratedOperator"),
    "branch": ("cluster.operators.taskflow", "BranchPythonDecoratedOperator"),
    "short_circuit": ("cluster.operators.taskflow", "ShortCircuitDecoratedOperator"),
    "bash": ("cluster.operators.taskflow", "BashDecoratedOperator"),
    "sensor": ("cluster.sensors.python", "DecoratedSensorOperator"),
    "virtualenv": ("cluster.operators.taskflow", "PythonVirtualenvDecoratedOperator"),
    "external_python": ("cluster.operators.taskflow", "ExternalPythonDecoratedOperator"),
    "branch_virtualenv": ("cluster.operators.taskflow", "BranchPythonVirtualenvDecoratedOperator"),
    "branch_external_python": (
        "cluster.operators.taskflow",
        "BranchExternalPythonDecoratedOperator",
    ),
}

#: context keys a TaskFlow function may name without the caller passing them
KNOWN_CONTEXT_KEYS = frozenset(
    {
        "conn", "dag", "dag_run", "data_interval_end", "data_interval_start", "ds",
        "ds_nodash", "execution_date", "expanded_ti_count", "inlet_events", "inlets", "logical_date",
        "macros", "map_index_template", "outlet_events", "outlets", "params", "prev_data_interval_start_success",
        "prev_data_interval_end_success", "prev_start_date_success", "run_id", "task",
        "task_instance", "task_instance_key_str", "test_mode", "templates_dict", "ti", "ts",
        "triggering_dataset_events", "ts_nodash", "ts_nodash_with_tz", "var",
    }
)  # fmt: skip


def push_multiple_outputs(task: Any, context: dict[str, Any], result: Any) -> Any:
    """With ``multiple_outputs``, push each key of the returned dict as its own XCom.

    :raises TypeError: when the result is not a dict with string keys.
    """
    if not task.multiple_outputs or result is None:
        return result
    if not isinstance(result, dict):
        raise TypeError(
            f"Returned output was type {type(result)} expected dictionary for multiple_outputs"
        )
    for key, value in result.items():
        if not isinstance(key, str):
            raise TypeError(
                "Returned dictionary keys must be strings when using multiple_outputs, "
                f"found {key} ({type(key)}) instead"
            )
        context["ti"].xcom_push(key, value)
    return result


def unique_task_id(task_id: str) -> str:
    """``task_id``, or ``task_id__N`` when the current DAG already has it (Airflow's rule)."""
    dag = DagContext.current_dag()
    if dag is None:
        return task_id
    group = DagContext.current_group(dag)
    full_id = group.child_id(task_id) if group is not None else task_id
    if full_id not in dag.task_dict:
        return task_id
    prefix = re.escape(re.split(r"__\d+$", full_id)[0])
    suffixes = [0]
    for existing in dag.task_dict:
        match = re.match(rf"^{prefix}__(\d+)$", existing)
        if match:
            suffixes.append(int(match.group(1)))
    core = re.split(r"__\d+$", task_id)[0]
    return f"{core}__{max(suffixes) + 1}"


def _infer_multiple_outputs(fn: Callable[..., Any]) -> bool:
    """``-> dict[...]`` means multiple outputs, like Airflow."""
    try:
        hints = typing.get_type_hints(fn)
    except Exception:  # an unresolvable annotation is not an error in a DAG file
        return False
    returned = hints.get("return")
    return returned is dict or typing.get_origin(returned) is dict


def _context_signature(fn: Callable[..., Any]) -> inspect.Signature:
    """``fn``'s signature with context keys optional (the runner fills them in)."""
    signature = inspect.signature(fn)
    params = [
        p.replace(default=None) if p.name in KNOWN_CONTEXT_KEYS and p.default is p.empty else p
        for p in signature.parameters.values()
    ]
    return signature.replace(parameters=params)


def _check_call(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Fail at definition time when arguments are missing, not at run time.

    :raises TypeError: like calling the function would, context keys excepted.
    """
    _context_signature(fn).bind(*args, **kwargs)


class TaskDecorator:
    """A decorated function: call it to add a task, ``.override(...)`` to change options,
    ``.partial(...)``/``.expand(...)``/``.expand_kwargs(...)`` to map it.

    ``@setup`` and ``@teardown`` set :attr:`is_setup` / :attr:`is_teardown` on it, and
    every task it makes is marked so.
    """

    is_setup: bool = False
    is_teardown: bool = False
    on_failure_fail_dagrun: bool = False
    #: ``XComArg.map`` refuses a task function (it needs a plain one), as Airflow does
    is_task_decorator = True

    def __init__(
        self,
        function: Callable[..., Any],
        operator_class: type,
        multiple_outputs: bool | None,
        kwargs: dict[str, Any],
    ) -> None:
        self.function = function
        self.operator_class = operator_class
        self.multiple_outputs = (
            _infer_multiple_outputs(function) if multiple_outputs is None else multiple_outputs
        )
        self.kwargs = kwargs
        functools.update_wrapper(self, function)

    def __call__(self, *args: Any, **kwargs: Any) -> XComArg:
        fixed = dict(self.kwargs.get("op_kwargs") or {})
        _check_call(self.function, args, {**fixed, **kwargs})
        options = dict(self.kwargs)
        options.pop("op_kwargs", None)
        task_id = unique_task_id(options.pop("task_id", None) or self.function.__name__)
        self._add_doc(options)
        if self.is_teardown:
            if "trigger_rule" in options:
                raise definition_error("Trigger rule not configurable for teardown tasks.")
            options["trigger_rule"] = TriggerRule.ALL_DONE_SETUP_SUCCESS
        fail_dagrun = options.pop("on_failure_fail_dagrun", self.on_failure_fail_dagrun)
        operator = self.operator_class(
            task_id=task_id,
            python_callable=self.function,
            op_args=list(args),
            op_kwargs={**fixed, **kwargs},
            multiple_outputs=self.multiple_outputs,
            **options,
        )
        operator.is_setup = self.is_setup
        operator.is_teardown = self.is_teardown
        operator.on_failure_fail_dagrun = fail_dagrun
        return XComArg(operator)

    def _add_doc(self, options: dict[str, Any]) -> None:
        if self.function.__doc__ and not options.get("doc_md"):
            options["doc_md"] = inspect.cleandoc(self.function.__doc__)

    def override(self, **kwargs: Any) -> TaskDecorator:
        outputs = kwargs.pop("multiple_outputs", self.multiple_outputs)
        result = TaskDecorator(
            self.function, self.operator_class, outputs, {**self.kwargs, **kwargs}
        )
        result.is_setup = self.is_setup
        result.is_teardown = self.is_teardown
        result.on_failure_fail_dagrun = self.on_failure_fail_dagrun
        return result

    def partial(self, **kwargs: Any) -> TaskDecorator:
        """Fix some of the function's arguments for every mapped instance."""
        self._check_names("partial", kwargs)
        fixed = dict(self.kwargs.get("op_kwargs") or {})
        prevent_duplicates(fixed, kwargs, "duplicate partial")
        result = self.override()
        result.kwargs = {**self.kwargs, "op_kwargs": {**fixed, **kwargs}}
        return result

    def expand(self, **mapped: Any) -> XComArg:
        """One task instance per element of the mapped arguments (their cross product)."""
        if self.kwargs.get("trigger_rule") == "always" and any(
            isinstance(v, XComArg) for v in mapped.values()
        ):
            raise MappingValueError(
                f"{user_site()}: Task-generated mapping within a task using 'expand' is not "
                "allowed with trigger rule 'always'."
            )
        if not mapped:
            raise MappingTypeError(f"{user_site()}: no arguments to expand against")
        self._check_names("expand", mapped)
        prevent_duplicates(self.kwargs.get("op_kwargs") or {}, mapped, "mapping already partial")
        return self._expand(DictOfListsExpandInput(dict(mapped)), strict=False)

    def expand_kwargs(self, kwargs: Any, *, strict: bool = True) -> XComArg:
        """One task instance per dict of the function's keyword arguments."""
        return self._expand(list_of_dicts(kwargs), strict=strict)

    def _expand(self, expand_input: ExpandInput, *, strict: bool) -> XComArg:
        check_expand_input(expand_input)
        options = dict(self.kwargs)
        fixed = dict(options.pop("op_kwargs", None) or {})
        signature = _context_signature(self.function)
        if isinstance(expand_input, DictOfListsExpandInput):
            signature.bind_partial(**fixed, **expand_input.value)
        else:
            signature.bind_partial(**fixed)
        task_id = unique_task_id(options.pop("task_id", None) or self.function.__name__)
        self._add_doc(options)
        if self.is_teardown:
            if "trigger_rule" in options:
                raise definition_error("Trigger rule not configurable for teardown tasks.")
            options["trigger_rule"] = TriggerRule.ALL_DONE_SETUP_SUCCESS
        fail_dagrun = options.pop("on_failure_fail_dagrun", self.on_failure_fail_dagrun)
        operator = MappedOperator(
            operator_class=self.operator_class,
            expand_input=expand_input,
            partial_kwargs={"python_callable": self.function, "op_kwargs": fixed},
            expand_into="op_kwargs",
            strict=strict,
            task_id=task_id,
            multiple_outputs=self.multiple_outputs,
            **options,
        )
        operator.is_setup = self.is_setup
        operator.is_teardown = self.is_teardown
        operator.on_failure_fail_dagrun = fail_dagrun
        return XComArg(operator)

    def _check_names(self, func: str, kwargs: dict[str, Any]) -> None:
        """Airflow's ``_validate_arg_names``: names of the function, never context keys.

        :raises MappingValueError: for a context key, or (``expand``) an unmappable value.
        :raises MappingTypeError: for a name the function does not take.
        """
        site = user_site()
        shadowed = sorted(KNOWN_CONTEXT_KEYS.intersection(kwargs))
        if shadowed:
            names = ", ".join(repr(n) for n in shadowed)
            noun = "variable" if len(shadowed) == 1 else "variables"
            raise MappingValueError(f"{site}: cannot call {func}() on task context {noun} {names}")
        parameters = inspect.signature(self.function).parameters
        if any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
            return
        for name, value in kwargs.items():
            if name in parameters and func == "expand" and not is_mappable(value):
                raise MappingValueError(
                    f"{site}: expand() got an unexpected type {type(value).__name__!r} "
                    f"for keyword argument {name!r}"
                )
        unknown = [name for name in kwargs if name not in parameters]
        if len(unknown) == 1:
            raise MappingTypeError(
                f"{site}: {func}() got an unexpected keyword argument {unknown[0]!r}"
            )
        if unknown:
            names = ", ".join(repr(n) for n in unknown)
            raise MappingTypeError(f"{site}: {func}() got unexpected keyword arguments {names}")


@functools.cache
def flavour_operator(flavour: str) -> type:
    """The operator class of ``@task.<flavour>`` (see :data:`FLAVOURS`)."""
    module, name = FLAVOURS[flavour]
    operator_class: type = getattr(importlib.import_module(module), name)
    return operator_class


def _decorator(
    flavour: str,
    python_callable: Callable[..., Any] | None,
    multiple_outputs: bool | None,
    kwargs: dict[str, Any],
) -> Any:
    operator_class = flavour_operator(flavour)
    if python_callable is not None:
        return TaskDecorator(python_callable, operator_class, multiple_outputs, kwargs)
    return lambda fn: TaskDecorator(fn, operator_class, multiple_outputs, kwargs)


class _TaskFactory:
    """The ``task`` object: ``@task``, ``@task(...)``, ``@task.bash``, ``@task.branch`` ..."""

    def __call__(
        self,
        python_callable: Callable[..., Any] | None = None,
        multiple_outputs: bool | None = None,
        **kwargs: Any,
    ) -> Any:
        return self.python(python_callable, multiple_outputs, **kwargs)

    def python(
        self,
        python_callable: Callable[..., Any] | None = None,
        multiple_outputs: bool | None = None,
        **kwargs: Any,
    ) -> Any:
        return _decorator("python", python_callable, multiple_outputs, kwargs)

    def branch(
        self,
        python_callable: Callable[..., Any] | None = None,
        multiple_outputs: bool | None = None,
        **kwargs: Any,
    ) -> Any:
        return _decorator("branch", python_callable, multiple_outputs, kwargs)

    def short_circuit(
        self,
        python_callable: Callable[..., Any] | None = None,
        multiple_outputs: bool | None = None,
        **kwargs: Any,
    ) -> Any:
        return _decorator("short_circuit", python_callable, multiple_outputs, kwargs)

    def bash(self, python_callable: Callable[..., Any] | None = None, **kwargs: Any) -> Any:
        return _decorator("bash", python_callable, False, kwargs)

    def sensor(self, python_callable: Callable[..., Any] | None = None, **kwargs: Any) -> Any:
        return _decorator("sensor", python_callable, False, kwargs)

    run_if = staticmethod(run_if)
    skip_if = staticmethod(skip_if)

    def __getattr__(self, flavour: str) -> Any:
        """``@task.virtualenv``, ``@task.external_python``, ``@task.branch_virtualenv``,
        ``@task.branch_external_python``: any other flavour named in :data:`FLAVOURS`."""
        if flavour.startswith("_") or flavour not in FLAVOURS:
            raise AttributeError(f"task decorator {flavour!r} not found")

        def decorator(
            python_callable: Callable[..., Any] | None = None,
            multiple_outputs: bool | None = None,
            **kwargs: Any,
        ) -> Any:
            return _decorator(flavour, python_callable, multiple_outputs, kwargs)

        return decorator


task = _TaskFactory()


def _as_task_decorator(func: Any, marker: str) -> TaskDecorator:
    """``@setup`` / ``@teardown`` over a plain function make it a ``@task`` first.

    :raises DagDefinitionError: for a task group function, as in Airflow.
    """
    if isinstance(func, TaskDecorator):
        return func
    if inspect.isfunction(func) and not getattr(func, "is_task_group", False):
        decorated: TaskDecorator = task.python(func)
        return decorated
    raise definition_error(f"@{marker} applies to a function or a @task, not {func!r}")


def setup(func: Callable[..., Any]) -> TaskDecorator:
    """Airflow's ``@setup``: the decorated task sets up a resource (``as_setup``)."""
    decorated = _as_task_decorator(func, "setup")
    decorated.is_setup = True
    return decorated


def teardown(
    func: Callable[..., Any] | None = None, *, on_failure_fail_dagrun: bool = False
) -> Any:
    """Airflow's ``@teardown`` / ``@teardown(on_failure_fail_dagrun=True)``: the decorated
    task removes a resource; it runs with trigger rule ``all_done_setup_success``."""

    def mark(fn: Callable[..., Any]) -> TaskDecorator:
        decorated = _as_task_decorator(fn, "teardown")
        decorated.is_teardown = True
        decorated.on_failure_fail_dagrun = on_failure_fail_dagrun
        return decorated

    return mark(func) if func is not None else mark


__all__ = ["TaskDecorator", "setup", "task", "teardown", "unique_task_id"]
