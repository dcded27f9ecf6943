"""Rendering an operator's ``template_fields`` with Jinja, the way Airflow does.

Airflow's environment: a sandbox with ``jinja2.ext.do``, ``StrictUndefined`` unless the
DAG sets ``template_undefined``, a loader over the DAG file's folder plus
``template_searchpath``, the filters ``ds``/``ts``/..., and user macros and filters.
A string ending in one of the operator's ``template_ext`` is the name of a template
file. XComArgs and ``@dag`` params in fields are resolved, not rendered.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import jinja2
import jinja2.nativetypes
import jinja2.sandbox

from cluster.errors import TemplateError
from cluster.sdk.dag import DagParam
from cluster.sdk.macros import FILTERS
from cluster.sdk.xcom_arg import MappedArgument, XComArg

if TYPE_CHECKING:
    from cluster.sdk.baseoperator import BaseOperator
    from cluster.sdk.dag import DAG


class _NativeSandbox(jinja2.sandbox.SandboxedEnvironment, jinja2.nativetypes.NativeEnvironment):
    """``render_template_as_native_obj=True``: templates give Python objects, not text."""


#: each DAG object's environment, gone with the DAG
_ENVS: weakref.WeakKeyDictionary[DAG, jinja2.Environment] = weakref.WeakKeyDictionary()
#: compiled string templates kept per environment
COMPILED_PER_ENV = 512
_COMPILED: weakref.WeakKeyDictionary[jinja2.Environment, dict[str, jinja2.Template]] = (
    weakref.WeakKeyDictionary()
)


def template_env(dag: DAG | None) -> jinja2.Environment:
    """The Jinja environment for tasks of ``dag`` (a DAG-less task gets the defaults).

    Built once per DAG object: a long-lived worker renders the same DAG's tasks again
    and again, and building a sandbox costs more than rendering a short field.
    """
    if dag is None:
        return _build_env(None)
    env = _ENVS.get(dag)
    if env is None:
        env = _ENVS[dag] = _build_env(dag)
    return env


def _build_env(dag: DAG | None) -> jinja2.Environment:
    searchpath = [dag.folder, *dag.template_searchpath] if dag is not None else ["."]
    options: dict[str, Any] = {
        "loader": jinja2.FileSystemLoader(searchpath),
        "undefined": (dag.template_undefined if dag and dag.template_undefined else None)
        or jinja2.StrictUndefined,
        "extensions": ["jinja2.ext.do"],
        "cache_size": 0,
    }
    if dag is not None and dag.jinja_environment_kwargs:
        options.update(dag.jinja_environment_kwargs)
    native = dag is not None and dag.render_template_as_native_obj
    env_class = _NativeSandbox if native else jinja2.sandbox.SandboxedEnvironment
    env: jinja2.Environment = env_class(**options)
    env.filters.update(FILTERS)
    if dag is not None and dag.user_defined_filters:
        env.filters.update(dag.user_defined_filters)
    if dag is not None and dag.user_defined_macros:
        env.globals.update(dag.user_defined_macros)
    return env


def render_value(
    value: Any,
    context: Mapping[str, Any],
    env: jinja2.Environment,
    template_ext: tuple[str, ...] = (),
    seen: set[int] | None = None,
) -> Any:
    """Render ``value`` recursively: strings, lists, tuples, sets, dict values, and
    objects that declare their own ``template_fields``. Values whose id is in ``seen``
    are left as they are (a mapped instance's values read from XComs, as in Airflow)."""
    if seen is not None and id(value) in seen:
        return value
    if isinstance(value, str):
        if template_ext and value.endswith(template_ext):
            return env.get_template(value).render(**context)
        return _render_string(value, context, env)
    if isinstance(value, XComArg | DagParam | MappedArgument):
        return value.resolve(dict(context))
    if isinstance(value, tuple):
        if hasattr(value, "_fields"):  # namedtuple
            return type(value)(*(render_value(v, context, env, template_ext, seen) for v in value))
        return tuple(render_value(v, context, env, template_ext, seen) for v in value)
    if isinstance(value, list):
        return [render_value(v, context, env, template_ext, seen) for v in value]
    if isinstance(value, set | frozenset):
        return type(value)(render_value(v, context, env, template_ext, seen) for v in value)
    if isinstance(value, dict):
        return {k: render_value(v, context, env, template_ext, seen) for k, v in value.items()}
    fields = getattr(value, "template_fields", None)
    if fields and not isinstance(value, type):
        seen = seen if seen is not None else set()
        if id(value) not in seen:
            seen.add(id(value))
            for name in fields:
                nested = getattr(value, name)
                setattr(value, name, render_value(nested, context, env, template_ext, seen))
    return value


def _render_string(value: str, context: Mapping[str, Any], env: jinja2.Environment) -> Any:
    """Render one string; plain text skips Jinja, a template is compiled once per env.

    Plain text renders to itself in a text environment, less the one trailing newline
    Jinja drops unless ``keep_trailing_newline`` (``\\r`` would be normalised: not plain).
    """
    if not isinstance(env, jinja2.nativetypes.NativeEnvironment) and _is_plain(value, env):
        if value.endswith("\n") and not env.keep_trailing_newline:
            return value[:-1]
        return value
    compiled = _COMPILED.setdefault(env, {})
    template = compiled.get(value)
    if template is None:
        template = env.from_string(value)
        if len(compiled) < COMPILED_PER_ENV:
            compiled[value] = template
    return template.render(**context)


def _is_plain(value: str, env: jinja2.Environment) -> bool:
    markers = (
        env.block_start_string,
        env.variable_start_string,
        env.comment_start_string,
        env.line_statement_prefix,
        env.line_comment_prefix,
        "\r",
    )
    return not any(m and m in value for m in markers)


def render_template_fields(task: BaseOperator, context: Mapping[str, Any]) -> dict[str, Any]:
    """Render every template field of ``task`` in place and return what was rendered.

    :raises TemplateError: naming the task and field, with Jinja's error as the cause
        (an undefined variable, a syntax error, a missing template file).
    """
    env = template_env(task.dag)
    rendered: dict[str, Any] = {}
    ext = tuple(task.template_ext)
    from_xcom = task.__dict__.get("_resolved_from_xcom")
    for name in task.template_fields:
        value = getattr(task, name, None)
        if value is None:
            rendered[name] = None
            continue
        try:
            seen = set(from_xcom) if from_xcom else None
            result = render_value(value, context, env, ext, seen)
        except jinja2.TemplateNotFound as exc:
            raise TemplateError(
                f"task {task.task_id!r}, field {name!r}: template file {exc.name!r} not found "
                f"next to the DAG file or in template_searchpath"
            ) from exc
        except (jinja2.TemplateError, TypeError, KeyError, AttributeError) as exc:
            raise TemplateError(f"task {task.task_id!r}, field {name!r}: {exc}") from exc
        setattr(task, name, result)
        rendered[name] = result
    return rendered


def render_template(task: BaseOperator, value: Any, context: Mapping[str, Any]) -> Any:
    """Render one value with ``task``'s environment (``@task.bash`` renders its command)."""
    try:
        return render_value(value, context, template_env(task.dag), tuple(task.template_ext))
    except jinja2.TemplateError as exc:
        raise TemplateError(f"task {task.task_id!r}: {exc}") from exc
