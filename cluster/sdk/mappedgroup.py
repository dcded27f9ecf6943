"""``@task_group`` functions, and mapped task groups: ``group_fn.expand(x=[...])``.

Calling a decorated function builds a :class:`~cluster.sdk.taskgroup.TaskGroup`;
``.expand(...)``/``.expand_kwargs(...)`` (after an optional ``.partial(...)``) builds a
:class:`MappedTaskGroup`, whose every task runs once per element: the function's mapped
arguments are :class:`~cluster.sdk.xcom_arg.MappedArgument` stubs that resolve, in
instance ``i`` of the group, to element ``i``. Inside the group, instance ``i`` of a
task reads instance ``i`` of an upstream in the same group (:func:`upstream_map_indexes`,
the runner's half of :func:`cluster.policy.mapping.relevant_indexes`).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from cluster.errors import MappingTypeError, MappingValueError
from cluster.sdk.definitions import user_site
from cluster.sdk.expandinput import DictOfListsExpandInput, ExpandInput, is_mappable
from cluster.sdk.mappedoperator import check_expand_input, list_of_dicts, prevent_duplicates
from cluster.sdk.taskgroup import TaskGroup
from cluster.sdk.xcom_arg import MappedArgument, iter_producers

if TYPE_CHECKING:
    from cluster.sdk.baseoperator import BaseOperator


class MappedTaskGroup(TaskGroup):
    """A task group whose tasks each run once per element of ``expand_input``."""

    def __init__(self, *, expand_input: ExpandInput, **kwargs: Any) -> None:
        self.expand_input = expand_input
        super().__init__(**kwargs)

    def __exit__(self, *exc: object) -> None:
        for producer in self.expand_input.iter_references():
            self.set_upstream(producer)
        for task in self.iter_tasks():
            if task.trigger_rule == "always" and any(
                True for _ in self.expand_input.iter_references()
            ):
                raise MappingValueError(
                    f"{task._site}: Task-generated mapping within a mapped task group is not "
                    "allowed with trigger rule 'always'"
                )
        super().__exit__(*exc)

    def resolve_argument(self, key: str, context: Mapping[str, Any]) -> Any:
        """The ``key`` argument of the group instance the running task belongs to."""
        index = group_index(self, context["task"], context["ti"].map_index, context)
        return self.expand_input.resolve(context, index).kwargs[key]


def group_index(
    group: TaskGroup, task: BaseOperator, map_index: int, context: Mapping[str, Any]
) -> int:
    """Which instance of ``group`` instance ``map_index`` of ``task`` runs in (outer
    groups vary slowest, as the scheduler numbers them)."""
    inner = 1
    current = task.task_group
    while current is not None and current is not group:
        if current.expand_input is not None:
            inner *= current.expand_input.length(context)
        current = current.parent_group
    return map_index // inner


def _count(groups: list[TaskGroup], context: Mapping[str, Any]) -> int:
    count = 1
    for group in groups:
        count *= group.expand_input.length(context)
    return count


def upstream_map_indexes(
    task: BaseOperator, map_index: int, context: Mapping[str, Any]
) -> dict[str, int | range]:
    """For a task in a mapped group: the instances of each upstream in a common mapped
    group that this instance reads (a task not mapped deeper: one; else its block)."""
    groups = task.task_group.mapped_ancestors() if task.task_group is not None else []
    if not groups or map_index < 0 or task.dag is None:
        return {}
    own = _count(groups, context)
    found: dict[str, int | range] = {}
    for upstream_id in task.upstream_task_ids:
        upstream = task.dag.get_task(upstream_id)
        theirs = upstream.task_group.mapped_ancestors() if upstream.task_group else []
        common = next((g for g in theirs if g in groups), None)
        if common is None or not own:
            continue
        outer = common.mapped_ancestors()
        ancestor = _count(outer, context)
        index = map_index * ancestor // own
        if theirs[0] is common and not upstream.is_mapped:
            found[upstream_id] = index
            continue
        size = _count(theirs, context) // ancestor
        found[upstream_id] = range(index * size, index * size + size)
    return found


class TaskGroupDecorator:
    """A ``@task_group`` function: call it for a group, ``.expand(...)`` for a mapped one."""

    #: tells a ``@task_group`` function from a task function (setup/teardown checks it)
    is_task_group = True

    def __init__(self, function: Callable[..., Any], tg_kwargs: dict[str, Any]) -> None:
        self.function = function
        self.tg_kwargs = tg_kwargs
        self.partial_kwargs: dict[str, Any] = {}
        functools.update_wrapper(self, function)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._build(TaskGroup, args, {**self.partial_kwargs, **kwargs})

    def override(self, **tg_kwargs: Any) -> TaskGroupDecorator:
        new = TaskGroupDecorator(self.function, {**self.tg_kwargs, **tg_kwargs})
        new.partial_kwargs = dict(self.partial_kwargs)
        return new

    def partial(self, **kwargs: Any) -> TaskGroupDecorator:
        """Fix some of the function's arguments for every instance of the mapped group."""
        self._check_names("partial", kwargs)
        prevent_duplicates(self.partial_kwargs, kwargs, "duplicate partial")
        new = self.override()
        new.partial_kwargs.update(kwargs)
        return new

    def expand(self, **kwargs: Any) -> Any:
        """One group instance per element of the mapped arguments (their cross product)."""
        if not kwargs:
            raise MappingTypeError(f"{user_site()}: no arguments to expand against")
        self._check_names("expand", kwargs)
        prevent_duplicates(self.partial_kwargs, kwargs, "partial arguments given to expand")
        return self._mapped(DictOfListsExpandInput(dict(kwargs)), list(kwargs))

    def expand_kwargs(self, kwargs: Any) -> Any:
        """One group instance per dict of the function's keyword arguments."""
        names = [
            name for name in inspect.signature(self.function).parameters
            if name not in self.partial_kwargs
        ]  # fmt: skip
        return self._mapped(list_of_dicts(kwargs), names)

    def _mapped(self, expand_input: ExpandInput, names: list[str]) -> Any:
        check_expand_input(expand_input)
        holder: dict[str, MappedTaskGroup] = {}

        def factory(**options: Any) -> MappedTaskGroup:
            holder["group"] = MappedTaskGroup(expand_input=expand_input, **options)
            return holder["group"]

        stubs = _Stubs(holder, names)
        return self._build(factory, (), {**self.partial_kwargs, **stubs.arguments()})

    def _build(self, factory: Callable[..., TaskGroup], args: Any, kwargs: dict[str, Any]) -> Any:
        options = {"group_id": self.function.__name__, **self.tg_kwargs}
        options.setdefault("add_suffix_on_collision", True)
        with factory(**options) as group:
            if self.function.__doc__ and not group.tooltip:
                group.tooltip = self.function.__doc__
            result = self.function(*args, **kwargs)
        for producer in iter_producers([list(args), kwargs]):
            group.set_upstream(producer)
        return result if result is not None else group

    def _check_names(self, func: str, kwargs: dict[str, Any]) -> None:
        parameters = inspect.signature(self.function).parameters
        if any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
            return
        unknown = [name for name in kwargs if name not in parameters]
        if unknown:
            names = ", ".join(repr(n) for n in unknown)
            raise MappingTypeError(
                f"{user_site()}: {func}() got unexpected keyword arguments {names}"
            )
        for name, value in kwargs.items():
            if func == "expand" and not is_mappable(value):
                raise MappingValueError(
                    f"{user_site()}: expand() got an unexpected type {type(value).__name__!r} "
                    f"for keyword argument {name!r}"
                )


class _Stubs:
    """The mapped arguments a mapped group's function is called with: the group exists
    only once its ``with`` block opens, so each stub reads it from the holder."""

    def __init__(self, holder: dict[str, MappedTaskGroup], names: list[str]) -> None:
        self.holder = holder
        self.names = names

    def arguments(self) -> dict[str, Any]:
        return {name: _LateArgument(self.holder, name) for name in self.names}


class _LateArgument(MappedArgument):
    def __init__(self, holder: dict[str, MappedTaskGroup], key: str) -> None:
        self.holder = holder
        self.key = key

    @property
    def group(self) -> MappedTaskGroup:
        return self.holder["group"]


def task_group(python_callable: Callable[..., Any] | None = None, **tg_kwargs: Any) -> Any:
    """Decorate a function whose body creates tasks: each call builds a :class:`TaskGroup`
    (``.expand(...)`` a :class:`MappedTaskGroup`).

    The group id is the function name (``name__1`` on the second call); if the function
    returns a task or XComArg, the call returns it so edges bind to it, else the group.
    """
    if python_callable is not None:
        return TaskGroupDecorator(python_callable, tg_kwargs)
    return lambda fn: TaskGroupDecorator(fn, tg_kwargs)
