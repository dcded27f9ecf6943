"""``PythonOperator`` and its kin, with Airflow's context injection: branching,
short-circuit, and the callable run in a virtualenv or another interpreter.

A callable receives the context keys its signature names (``ds``, ``ti``, ...), or the
whole context when it takes ``**kwargs``, plus ``op_kwargs``; ``op_args`` go first.
``get_current_context`` is importable from here, as from Airflow's module.
"""

from __future__ import annotations

import inspect
import logging
import os
import sys
import types
from collections.abc import Callable, Collection, Container, Iterable, Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from cluster.errors import TradewindError
from cluster.operators.bash import SubprocessRunner
from cluster.operators.branching import branch_skips, short_circuit_skips, skip
from cluster.operators.python_script import SERIALIZERS, PythonCall, subprocess_env
from cluster.operators.venvs import VenvSpec, ensure_venv
from cluster.sdk.baseoperator import BaseOperator
from cluster.sdk.context import get_current_context
from cluster.sdk.dataset_events import call_collecting_metadata
from cluster.sdk.node import node_options

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
        result = call_collecting_metadata(
            self.python_callable, context.get("outlet_events"), *self.op_args, **kwargs
        )
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


def is_venv_installed() -> bool:
    """Whether virtualenvs can be made: always, with the standard library's ``venv``."""
    return True


#: context keys a function in another interpreter may name: plain values and datetimes
#: (Airflow's "base" and "pendulum" keys; DAG, task and run objects cannot cross)
SERIALIZABLE_CONTEXT_KEYS = frozenset(
    {
        "ds", "ds_nodash", "expanded_ti_count", "inlets", "map_index_template", "outlets",
        "run_id", "task_instance_key_str", "test_mode", "ts", "ts_nodash", "ts_nodash_with_tz",
        "params", "data_interval_end", "data_interval_start", "execution_date",
        "logical_date", "prev_data_interval_end_success", "prev_data_interval_start_success",
        "prev_start_date_success",
    }
)  # fmt: skip
_DATETIME_KEYS = frozenset(
    {"data_interval_end", "data_interval_start", "execution_date", "logical_date"}
    | {"prev_data_interval_end_success", "prev_data_interval_start_success"}
    | {"prev_start_date_success"}
)


class _BasePythonVirtualenvOperator(PythonOperator):
    """Call ``python_callable`` in another interpreter (see :mod:`cluster.operators.python_script`).

    The callable must be a plain function whose source can be read; its arguments and
    result cross by ``serializer`` (``pickle``, Airflow's default, or ``json``, ``dill``,
    ``cloudpickle``). Context keys it names are passed when they can cross
    (:data:`SERIALIZABLE_CONTEXT_KEYS`; with ``json``, not datetimes).
    """

    def __init__(
        self,
        *,
        python_callable: Callable[..., Any],
        serializer: str | None = None,
        string_args: Iterable[str] | None = None,
        expect_airflow: bool = True,
        skip_on_exit_code: int | Container[int] | None = None,
        env_vars: dict[str, str] | None = None,
        inherit_env: bool = True,
        use_dill: bool = False,
        **kwargs: Any,
    ) -> None:
        if not isinstance(python_callable, types.FunctionType) or (
            python_callable.__name__ == "<lambda>"
        ):
            raise ValueError(
                f"{type(self).__name__} only supports functions for python_callable arg"
            )
        if inspect.isgeneratorfunction(python_callable):
            raise ValueError(
                f"{type(self).__name__} does not support using 'yield' in python_callable"
            )
        super().__init__(python_callable=python_callable, **kwargs)
        serializer = serializer or ("dill" if use_dill else "pickle")
        if serializer not in SERIALIZERS:
            raise TradewindError(
                f"Unsupported serializer {serializer!r}. "
                f"Expected one of {', '.join(map(repr, SERIALIZERS))}"
            )
        self.serializer = serializer
        self.string_args = list(string_args or [])
        self.expect_airflow = expect_airflow
        if skip_on_exit_code is None:
            skip_on_exit_code = ()
        elif isinstance(skip_on_exit_code, int):
            skip_on_exit_code = (skip_on_exit_code,)
        self.skip_on_exit_code = skip_on_exit_code
        self.env_vars = env_vars
        self.inherit_env = inherit_env
        self._runner = SubprocessRunner()

    def _serializable(self, context: dict[str, Any]) -> dict[str, Any]:
        keys = SERIALIZABLE_CONTEXT_KEYS
        if self.serializer == "json":
            keys = keys - _DATETIME_KEYS
        return {k: v for k, v in context.items() if k in keys}

    def interpreter(self) -> Path:
        """The ``python`` to run the callable with."""
        raise NotImplementedError

    def execute(self, context: dict[str, Any]) -> Any:
        merged = {**self._serializable(context), **self.op_kwargs}
        if self.templates_dict is not None:
            merged["templates_dict"] = self.templates_dict
        kwargs = determine_kwargs(self.python_callable, self.op_args, merged)
        call = PythonCall(
            fn=self.python_callable,
            args=list(self.op_args),
            kwargs=kwargs,
            serializer=self.serializer,
            string_args=self.string_args,
            env=subprocess_env(self.env_vars, self.inherit_env),
            skip_on_exit_code=self.skip_on_exit_code,
        )
        result = call.run(self.interpreter(), self._runner)
        log.info("Done. Returned value was: %s", result if self.show_return_value_in_logs else "")
        return result

    def on_kill(self) -> None:
        self._runner.kill()


class PythonVirtualenvOperator(_BasePythonVirtualenvOperator):
    """Call the function in a virtualenv with ``requirements`` installed.

    Unlike Airflow, the virtualenv is always cached: built once per node and
    requirements set under ``$TRADEWIND_HOME/venvs`` (or ``venv_cache_path``), see
    :mod:`cluster.operators.venvs`.

    :param python_version: e.g. ``"3.11"``: build from ``python3.11``, which must exist.
    :param system_site_packages: let the virtualenv see the base interpreter's packages.
    """

    template_fields: Sequence[str] = (
        *PythonOperator.template_fields, "requirements", "index_urls", "venv_cache_path",
    )  # fmt: skip

    def __init__(
        self,
        *,
        python_callable: Callable[..., Any],
        requirements: Iterable[str] | str | None = None,
        python_version: str | None = None,
        system_site_packages: bool = True,
        pip_install_options: list[str] | None = None,
        index_urls: Collection[str] | str | None = None,
        venv_cache_path: str | os.PathLike[str] | None = None,
        **kwargs: Any,
    ) -> None:
        if python_version and str(python_version)[0] != str(sys.version_info.major):
            if kwargs.get("op_args") or kwargs.get("op_kwargs"):
                raise TradewindError(
                    "Passing op_args or op_kwargs is not supported across different Python "
                    "major versions for PythonVirtualenvOperator. Please use string_args."
                )
        self.requirements = (
            [requirements] if isinstance(requirements, str) else list(requirements or [])
        )
        self.python_version = str(python_version) if python_version is not None else None
        self.system_site_packages = system_site_packages
        self.pip_install_options = list(pip_install_options or [])
        self.index_urls = [index_urls] if isinstance(index_urls, str) else list(index_urls or [])
        self.venv_cache_path = venv_cache_path
        super().__init__(python_callable=python_callable, **kwargs)

    def venv_spec(self) -> VenvSpec:
        requirements = list(self.requirements)
        extra = self.serializer in ("dill", "cloudpickle") and not self.system_site_packages
        if extra and self.serializer not in requirements:
            requirements.append(self.serializer)
        return VenvSpec(
            requirements=tuple(sorted(requirements)),
            python_version=self.python_version,
            system_site_packages=self.system_site_packages,
            pip_install_options=tuple(self.pip_install_options),
            index_urls=tuple(self.index_urls),
        )

    def interpreter(self) -> Path:
        folder = Path(self.venv_cache_path) if self.venv_cache_path else node_options().venvs_folder
        return ensure_venv(self.venv_spec(), folder)


class BranchPythonVirtualenvOperator(PythonVirtualenvOperator):
    """The function (in a virtualenv) returns the task id(s) to follow."""

    def execute(self, context: dict[str, Any]) -> Any:
        return do_branch(self, context, super().execute(context))


class ExternalPythonOperator(_BasePythonVirtualenvOperator):
    """Call the function with an existing interpreter ``python`` (e.g. a prepared venv's).

    :raises TradewindError: at run time when ``python`` does not exist.
    """

    template_fields: Sequence[str] = (*PythonOperator.template_fields, "python")

    def __init__(self, *, python: str, python_callable: Callable[..., Any], **kwargs: Any) -> None:
        if not python:
            raise ValueError("Python Path must be defined in ExternalPythonOperator")
        self.python = python
        super().__init__(python_callable=python_callable, **kwargs)

    def interpreter(self) -> Path:
        path = Path(self.python)
        if not path.exists():
            raise TradewindError(f"Python Path '{path}' must exists")
        if not path.is_file():
            raise TradewindError(f"Python Path '{path}' must be a file")
        return path


class BranchExternalPythonOperator(ExternalPythonOperator):
    """The function (in the external interpreter) returns the task id(s) to follow."""

    def execute(self, context: dict[str, Any]) -> Any:
        return do_branch(self, context, super().execute(context))


__all__ = [
    "BranchExternalPythonOperator",
    "BranchPythonOperator",
    "BranchPythonVirtualenvOperator",
    "ExternalPythonOperator",
    "PythonOperator",
    "PythonVirtualenvOperator",
    "ShortCircuitOperator",
    "get_current_context",
    "is_venv_installed",
]
