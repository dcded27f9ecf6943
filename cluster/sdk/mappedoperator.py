"""Dynamic task mapping: ``Op.partial(...).expand(...)`` and the mapped task it builds.

A :class:`MappedOperator` stands in the DAG for every instance the scheduler will
create from it: it carries the scheduling knobs of its ``partial`` arguments (retries,
pool, trigger rule, ...), the operator class, the fixed arguments, and the
:mod:`expand input <cluster.sdk.expandinput>`. The runner calls :meth:`MappedOperator.unmap`
to build the real operator of one ``map_index``, as Airflow's ``unmap`` does.
Definition errors are Airflow's (``TypeError``/``ValueError``), as subclasses of
:class:`~cluster.errors.DagDefinitionError` that name the DAG file and line.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from cluster.errors import (
    MappingNotSupported,
    MappingTypeError,
    MappingValueError,
    UnmappableXCom,
)
from cluster.sdk.baseoperator import BaseOperator, _accepted_args
from cluster.sdk.dagcontext import detached
from cluster.sdk.definitions import user_site
from cluster.sdk.expandinput import (
    DictOfListsExpandInput,
    ExpandInput,
    ListOfDictsExpandInput,
    ensure_return_value,
    is_mappable,
)
from cluster.sdk.xcom_arg import XComArg, iter_producers

#: arguments ``partial`` always holds (Airflow's ``partial`` signature): never mappable
PARTIAL_ONLY = frozenset(
    {
        "task_id", "dag", "task_group", "start_date", "end_date", "owner", "email", "params",
        "resources", "trigger_rule", "depends_on_past", "ignore_first_depends_on_past",
        "wait_for_past_depends_before_skipping", "wait_for_downstream", "retries", "queue",
        "pool", "pool_slots", "execution_timeout", "max_retry_delay", "retry_delay",
        "retry_exponential_backoff", "priority_weight", "weight_rule", "sla",
        "map_index_template", "max_active_tis_per_dag", "max_active_tis_per_dagrun",
        "on_execute_callback", "on_failure_callback", "on_success_callback",
        "on_retry_callback", "on_skipped_callback", "run_as_user", "executor",
        "executor_config", "inlets", "outlets", "doc", "doc_md", "doc_json", "doc_yaml",
        "doc_rst", "task_display_name", "logger_name", "default_args",
    }
)  # fmt: skip
#: why an ``.expand()`` inside an expanded task group is refused (Airflow 2.10 raises
#: ``NotImplementedError("operator expansion in an expanded task group is not yet
#: supported")`` from ``MappedOperator.__attrs_post_init__``)
IN_MAPPED_GROUP = (
    "operator expansion in an expanded task group is not supported (nor by Airflow 2.10): "
    "expand the task group over every combination instead, or expand the task outside it"
)
#: ``MappedOperator``'s own keyword arguments, kept out of the operator's
_OWN = frozenset({"operator_class", "expand_input", "partial_kwargs", "expand_into", "strict"})


def _error(kind: type[Exception], message: str) -> Exception:
    return kind(f"{user_site()}: {message}")


def check_arguments(
    operator_class: type, func: str, values: Mapping[str, Any], *, accepted: frozenset[str]
) -> None:
    """Airflow's ``validate_mapping_kwargs``: every name known, every expanded value mappable.

    :raises MappingTypeError: for names ``operator_class`` does not take.
    :raises MappingValueError: for an expanded value that is not a list, dict or XComArg.
    """
    unknown = [name for name in values if name not in accepted]
    if len(unknown) == 1:
        raise _error(
            MappingTypeError,
            f"{operator_class.__name__}.{func}() got an unexpected keyword argument {unknown[0]!r}",
        )
    if unknown:
        names = ", ".join(repr(n) for n in unknown)
        raise _error(
            MappingTypeError,
            f"{operator_class.__name__}.{func}() got unexpected keyword arguments {names}",
        )
    if func != "expand":
        return
    for name, value in values.items():
        if not is_mappable(value):
            raise _error(
                MappingValueError,
                f"{operator_class.__name__}.expand() got an unexpected type "
                f"{type(value).__name__!r} for keyword argument {name}",
            )


def prevent_duplicates(fixed: Mapping[str, Any], mapped: Mapping[str, Any], reason: str) -> None:
    """:raises MappingTypeError: when a name is both fixed and mapped."""
    both = sorted(set(fixed) & set(mapped))
    if len(both) == 1:
        raise _error(MappingTypeError, f"{reason} argument: {both[0]}")
    if both:
        raise _error(MappingTypeError, f"{reason} arguments: {', '.join(both)}")


def check_expand_input(expand_input: ExpandInput) -> None:
    """:raises MappingValueError: for an XComArg over a custom key, or a bad ``expand_kwargs``."""
    try:
        ensure_return_value(expand_input.value)
    except ValueError as exc:
        raise _error(MappingValueError, str(exc)) from None


def list_of_dicts(value: Any) -> ListOfDictsExpandInput:
    """``expand_kwargs``'s argument: an XComArg, or a list of dicts and XComArgs.

    :raises MappingTypeError: for anything else.
    """
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        for item in value:
            if not isinstance(item, XComArg | Mapping):
                raise _error(
                    MappingTypeError, f"expected XComArg or list[dict], not {type(value).__name__}"
                )
    elif not isinstance(value, XComArg):
        raise _error(
            MappingTypeError, f"expected XComArg or list[dict], not {type(value).__name__}"
        )
    return ListOfDictsExpandInput(value)


class OperatorPartial:
    """What ``Op.partial(...)`` returns: call :meth:`expand` or :meth:`expand_kwargs` on it."""

    def __init__(self, operator_class: type[BaseOperator], kwargs: dict[str, Any]) -> None:
        if "task_id" not in kwargs:
            raise _error(MappingTypeError, f"{operator_class.__name__}.partial() needs a task_id")
        accepted = _accepted_args(operator_class)
        check_arguments(operator_class, "partial", kwargs, accepted=accepted | PARTIAL_ONLY)
        self.operator_class = operator_class
        self.kwargs = kwargs
        self._accepted = accepted

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.kwargs.items())
        return f"{self.operator_class.__name__}.partial({args})"

    def expand(self, **mapped: Any) -> MappedOperator:
        """One task instance per element (cross product over several arguments)."""
        if not mapped:
            raise _error(MappingTypeError, "no arguments to expand against")
        check_arguments(self.operator_class, "expand", mapped, accepted=self._accepted)
        fixed = {**dict.fromkeys(PARTIAL_ONLY), **self.kwargs}
        prevent_duplicates(fixed, mapped, "unmappable or already specified")
        return self._expand(DictOfListsExpandInput(dict(mapped)), strict=False)

    def expand_kwargs(self, kwargs: Any, *, strict: bool = True) -> MappedOperator:
        """One task instance per dict of keyword arguments."""
        return self._expand(list_of_dicts(kwargs), strict=strict)

    def _expand(self, expand_input: ExpandInput, *, strict: bool) -> MappedOperator:
        check_expand_input(expand_input)
        base = _accepted_args(BaseOperator) | {"default_args"}
        own = {k: v for k, v in self.kwargs.items() if k not in base}
        common = {k: v for k, v in self.kwargs.items() if k in base}
        return MappedOperator(
            operator_class=self.operator_class,
            expand_input=expand_input,
            partial_kwargs=own,
            strict=strict,
            **common,
        )


def _partial(cls: type[BaseOperator], **kwargs: Any) -> OperatorPartial:
    return OperatorPartial(cls, kwargs)


setattr(BaseOperator, "partial", classmethod(_partial))  # noqa: B010


class MappedOperator(BaseOperator):
    """A task expanded at run time into instances ``0..n-1`` (Airflow's ``MappedOperator``).

    :param partial_kwargs: the fixed arguments that are the operator class's own (not
        :class:`BaseOperator`'s, which this object keeps as its own attributes).
    :param expand_into: ``None``: expanded values are the operator's keyword
        arguments; ``"op_kwargs"``: they are the TaskFlow function's arguments.
    :param strict: for ``expand_kwargs``: a mapped key that is also fixed fails the
        instance at run time instead of overriding the fixed value.
    """

    is_mapped = True

    def __init__(
        self,
        *,
        operator_class: type[BaseOperator],
        expand_input: ExpandInput,
        partial_kwargs: dict[str, Any],
        expand_into: str | None = None,
        strict: bool = False,
        **kwargs: Any,
    ) -> None:
        self.operator_class = operator_class
        self.expand_input = expand_input
        self.partial_kwargs = dict(partial_kwargs)
        self.expand_into = expand_into
        self.strict = strict
        skip = {"dag", "task_group", "task_id", "default_args"}
        self.base_kwargs = {k: v for k, v in kwargs.items() if k not in skip}
        self.template_fields = tuple(operator_class.template_fields)
        self.template_ext = tuple(operator_class.template_ext)
        self.__dict__["template_fields_renderers"] = dict(operator_class.template_fields_renderers)
        self.ui_color = operator_class.ui_color
        self.ui_fgcolor = operator_class.ui_fgcolor
        self.inherits_from_empty_operator = operator_class.inherits_from_empty_operator
        self.custom_operator_name = operator_class.custom_operator_name
        super().__init__(**kwargs)
        if self.sla is not None:
            raise _error(
                MappingValueError,
                f"SLAs are unsupported with mapped tasks. Please set `sla=None` for task "
                f"{self.task_id!r}.",
            )
        if _in_mapped_group(self):
            raise _error(MappingNotSupported, IN_MAPPED_GROUP)

    def __repr__(self) -> str:
        return f"<Mapped({self.task_type}): {self.task_id}>"

    @property
    def task_type(self) -> str:
        return self.operator_class.__name__

    @property
    def operator_name(self) -> str:
        return self.custom_operator_name or self.operator_class.__name__

    def iter_mapped_dependencies(self) -> list[BaseOperator]:
        """The tasks whose return values this task expands over."""
        return list(self.expand_input.iter_references())

    def _link_xcom_args(self) -> None:
        """Producers of the expanded values, and of XComArgs in fixed template fields, go
        upstream of this task."""
        for producer in self.expand_input.iter_references():
            self.set_upstream(producer)
        for name in self.template_fields:
            for producer in iter_producers(self.partial_kwargs.get(name)):
                self.set_upstream(producer)

    def unmap(self, context: Mapping[str, Any], map_index: int) -> tuple[BaseOperator, int]:
        """The real operator of instance ``map_index``, and how many instances there are.

        The operator is built like the DAG file would (defaults, validation) but joins
        neither the DAG nor its group. Values read from XComs are remembered on it
        (``_resolved_from_xcom``) so templating leaves them alone, as in Airflow.

        :raises ValueError: when the expanded value cannot be indexed (see
            :mod:`cluster.sdk.expandinput`).
        """
        if map_index < 0:
            raise RuntimeError("can't resolve task-mapping argument without expanding")
        resolved = self.expand_input.resolve(context, map_index)
        kwargs = dict(self.partial_kwargs)
        if self.expand_into is not None:
            kwargs[self.expand_into] = {**kwargs.get(self.expand_into, {}), **resolved.kwargs}
        else:
            if self.strict:
                prevent_duplicates(kwargs, resolved.kwargs, "unmappable or already specified")
            kwargs.update(resolved.kwargs)
        group = self.task_group
        with detached():
            operator = self.operator_class(
                task_id=self.label, dag=self.dag, task_group=group, **self.base_kwargs, **kwargs
            )
        operator.upstream_task_ids = set(self.upstream_task_ids)
        operator.downstream_task_ids = set(self.downstream_task_ids)
        operator.__dict__["_resolved_from_xcom"] = resolved.from_xcom
        return operator, resolved.count


def _in_mapped_group(task: BaseOperator) -> bool:
    group = task.task_group
    while group is not None:
        if getattr(group, "expand_input", None) is not None:
            return True
        group = group.parent_group
    return False


def mapping_producer_ids(dag: Any) -> frozenset[str]:
    """Tasks of ``dag`` whose return value a mapped task or mapped group expands over
    (computed once per DAG object: a worker asks for every try)."""
    cached = dag.__dict__.get("_mapping_producer_ids")
    if cached is not None:
        return cached
    found: set[str] = set()
    for task in dag.tasks:
        if isinstance(task, MappedOperator):
            found.update(p.task_id for p in task.expand_input.iter_references())
    for group in dag.task_group_dict.values():
        expand_input = getattr(group, "expand_input", None)
        if expand_input is not None:
            found.update(p.task_id for p in expand_input.iter_references())
    result = frozenset(found)
    dag.__dict__["_mapping_producer_ids"] = result
    return result


def mapped_length(value: Any, limit: int) -> tuple[int, list[Any] | None]:
    """The length (and dict keys) of a return value a mapped task expands over.

    :raises UnmappableXCom: for ``None``, a value that is not a list or dict, or one
        longer than ``limit`` (``core.max_map_length``), as Airflow fails the producer.
    """
    if value is None:
        raise UnmappableXCom("did not push XCom for task mapping")
    if not isinstance(value, Sequence | Mapping) or isinstance(value, str | bytes):
        raise UnmappableXCom(f"unmappable return type {type(value).__qualname__!r}")
    if len(value) > limit:
        raise UnmappableXCom(
            f"unmappable return value length: {len(value)} > {limit} (core.max_map_length)"
        )
    return len(value), (list(value) if isinstance(value, Mapping) else None)
