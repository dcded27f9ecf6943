"""``XComArg``: a reference to a task's future XCom, used as an argument of another task.

Passing one to an operator (TaskFlow call, templated field, or ``expand``) makes the
producer upstream of the consumer; at run time :meth:`XComArg.resolve` pulls the value.
As in Airflow, ``arg.map(f)``, ``arg.zip(...)`` and ``arg.concat(...)`` build derived
references whose values are computed lazily from the pulled ones, so a mapped task can
expand over them; :meth:`XComArg.to_ref` is their serialized form (what the scheduler
reads to know how many instances a mapped task gets).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from cluster.sdk.setup_teardown import SetupTeardownMixin

if TYPE_CHECKING:
    from cluster.sdk.baseoperator import BaseOperator

XCOM_RETURN_KEY = "return_value"


class _NoFill:
    def __repr__(self) -> str:
        return "NOTSET"


#: ``zip`` without ``fillvalue``: stop at the shortest input
NO_FILL: Any = _NoFill()


class XComArg(SetupTeardownMixin):
    """The XCom ``key`` of ``operator``; ``arg["k"]`` selects one of multiple outputs.

    ``XComArg(op)`` builds the plain reference; every derived kind (map, zip, concat)
    is an ``XComArg`` too, so ``isinstance`` finds them all, as in Airflow.
    """

    operator: BaseOperator
    key: str

    def __new__(cls, *args: Any, **kwargs: Any) -> XComArg:
        if cls is XComArg:
            return object.__new__(PlainXComArg)
        return object.__new__(cls)

    def __init__(self, operator: BaseOperator, key: str = XCOM_RETURN_KEY) -> None:
        self.operator = operator
        self.key = key

    def iter_references(self) -> Iterator[tuple[BaseOperator, str]]:
        """Every ``(producer, key)`` this reference reads."""
        raise NotImplementedError

    @property
    def roots(self) -> list[BaseOperator]:
        return [op for op, _ in self.iter_references()]

    @property
    def leaves(self) -> list[BaseOperator]:
        return [op for op, _ in self.iter_references()]

    def __iter__(self) -> Iterator[Any]:
        raise TypeError("'XComArg' object is not iterable: its value only exists at run time")

    def map(self, f: Callable[[Any], Any]) -> XComArg:
        """Apply ``f`` to each element when the value is read (``expand`` over it)."""
        return MapXComArg(self, [f])

    def zip(self, *others: XComArg, fillvalue: Any = NO_FILL) -> XComArg:
        """Tuples of the n-th elements, like ``zip`` (``zip_longest`` with ``fillvalue``)."""
        return ZipXComArg([self, *others], fillvalue=fillvalue)

    def concat(self, *others: XComArg) -> XComArg:
        """The elements of this value, then of each of ``others``, like ``itertools.chain``."""
        return ConcatXComArg([self, *others])

    def resolve(self, context: Mapping[str, Any]) -> Any:
        """The value at run time, read through the running task instance in ``context``."""
        raise NotImplementedError

    def to_ref(self) -> dict[str, Any]:
        """The serialized form: ``{"type": "xcom" | "map" | "zip" | "concat", ...}``."""
        raise NotImplementedError


class PlainXComArg(XComArg):
    """One XCom of one task, with no transformation."""

    def __repr__(self) -> str:
        return f"XComArg({self.operator.task_id!r}, key={self.key!r})"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, PlainXComArg)
            and other.operator is self.operator
            and other.key == self.key
        )

    def __hash__(self) -> int:
        return hash((id(self.operator), self.key))

    def __getitem__(self, key: str) -> XComArg:
        if not isinstance(key, str):
            raise ValueError(f"XComArg only supports str lookup, received {type(key).__name__}")
        return PlainXComArg(self.operator, key)

    def iter_references(self) -> Iterator[tuple[BaseOperator, str]]:
        yield self.operator, self.key

    def map(self, f: Callable[[Any], Any]) -> XComArg:
        if self.key != XCOM_RETURN_KEY:
            raise ValueError("cannot map against non-return XCom")
        return super().map(f)

    def zip(self, *others: XComArg, fillvalue: Any = NO_FILL) -> XComArg:
        if self.key != XCOM_RETURN_KEY:
            raise ValueError("cannot map against non-return XCom")
        return super().zip(*others, fillvalue=fillvalue)

    def concat(self, *others: XComArg) -> XComArg:
        if self.key != XCOM_RETURN_KEY:
            raise ValueError("cannot concatenate non-return XCom")
        return super().concat(*others)

    def setup_teardown_operators(self) -> list[BaseOperator]:
        return [self.operator]

    @property
    def is_setup(self) -> bool:
        return self.operator.is_setup

    @is_setup.setter
    def is_setup(self, value: bool) -> None:
        self.operator.is_setup = value

    @property
    def is_teardown(self) -> bool:
        return self.operator.is_teardown

    @is_teardown.setter
    def is_teardown(self, value: bool) -> None:
        self.operator.is_teardown = value

    @property
    def on_failure_fail_dagrun(self) -> bool:
        return self.operator.on_failure_fail_dagrun

    @on_failure_fail_dagrun.setter
    def on_failure_fail_dagrun(self, value: bool) -> None:
        self.operator.on_failure_fail_dagrun = value

    def resolve(self, context: Mapping[str, Any]) -> Any:
        """Pull the value; a mapped producer gives all its values in map-index order.

        Inside a mapped task group, a producer in the same group gives only the value
        of the matching instance (the runner tells the handle which indexes apply).
        """
        ti = context["ti"]
        task_id = self.operator.task_id
        relevant = getattr(ti, "upstream_map_indexes", None) or {}
        return ti.xcom_pull(task_ids=task_id, key=self.key, map_indexes=relevant.get(task_id))

    def to_ref(self) -> dict[str, Any]:
        return {"type": "xcom", "task_id": self.operator.task_id, "key": self.key}


def callable_name(f: Any) -> str:
    return getattr(f, "__name__", None) or type(f).__name__


class MapXComArg(XComArg):
    """``arg.map(f1).map(f2)``: each element passes through the callables, in order."""

    def __init__(self, arg: XComArg, callables: Sequence[Callable[[Any], Any]]) -> None:
        for f in callables:
            if getattr(f, "is_task_decorator", False):
                raise ValueError("map() argument must be a plain function, not a @task operator")
        self.arg = arg
        self.callables = list(callables)

    def __repr__(self) -> str:
        return f"{self.arg!r}" + "".join(f".map({callable_name(f)})" for f in self.callables)

    def iter_references(self) -> Iterator[tuple[BaseOperator, str]]:
        yield from self.arg.iter_references()

    def map(self, f: Callable[[Any], Any]) -> XComArg:
        return MapXComArg(self.arg, [*self.callables, f])

    def resolve(self, context: Mapping[str, Any]) -> Any:
        value = self.arg.resolve(context)
        if not isinstance(value, Sequence | dict) or isinstance(value, str):
            raise ValueError(f"XCom map expects sequence or dict, not {type(value).__name__}")
        return MapResult(value, self.callables)

    def to_ref(self) -> dict[str, Any]:
        return {
            "type": "map",
            "arg": self.arg.to_ref(),
            "callables": [callable_name(f) for f in self.callables],
        }


class ZipXComArg(XComArg):
    """``a.zip(b, c)``: tuples of the n-th elements of each value."""

    def __init__(self, args: Sequence[XComArg], *, fillvalue: Any = NO_FILL) -> None:
        if not args:
            raise ValueError("At least one input is required")
        self.args = list(args)
        self.fillvalue = fillvalue

    def __repr__(self) -> str:
        first, *rest = self.args
        fill = "" if self.fillvalue is NO_FILL else f", fillvalue={self.fillvalue!r}"
        return f"{first!r}.zip({', '.join(repr(a) for a in rest)}{fill})"

    def iter_references(self) -> Iterator[tuple[BaseOperator, str]]:
        for arg in self.args:
            yield from arg.iter_references()

    def resolve(self, context: Mapping[str, Any]) -> Any:
        values = [arg.resolve(context) for arg in self.args]
        for value in values:
            if not isinstance(value, Sequence | dict) or isinstance(value, str):
                raise ValueError(f"XCom zip expects sequence or dict, not {type(value).__name__}")
        return ZipResult(values, fillvalue=self.fillvalue)

    def to_ref(self) -> dict[str, Any]:
        ref: dict[str, Any] = {"type": "zip", "args": [a.to_ref() for a in self.args]}
        if self.fillvalue is not NO_FILL:
            ref["fillvalue"] = self.fillvalue
        return ref


class ConcatXComArg(XComArg):
    """``a.concat(b)``: the elements of ``a`` then those of ``b``."""

    def __init__(self, args: Sequence[XComArg]) -> None:
        if not args:
            raise ValueError("At least one input is required")
        self.args = list(args)

    def __repr__(self) -> str:
        first, *rest = self.args
        return f"{first!r}.concat({', '.join(repr(a) for a in rest)})"

    def iter_references(self) -> Iterator[tuple[BaseOperator, str]]:
        for arg in self.args:
            yield from arg.iter_references()

    def concat(self, *others: XComArg) -> XComArg:
        return ConcatXComArg([*self.args, *others])

    def resolve(self, context: Mapping[str, Any]) -> Any:
        values = [arg.resolve(context) for arg in self.args]
        for value in values:
            if not isinstance(value, Sequence | dict) or isinstance(value, str):
                raise ValueError(
                    f"XCom concat expects sequence or dict, not {type(value).__name__}"
                )
        return ConcatResult(values)

    def to_ref(self) -> dict[str, Any]:
        return {"type": "concat", "args": [a.to_ref() for a in self.args]}


class MapResult(Sequence[Any]):
    """The value of a :class:`MapXComArg`: elements transformed when read."""

    def __init__(self, value: Sequence[Any] | dict[Any, Any], callables: list[Any]) -> None:
        self.value = value
        self.callables = callables

    def __getitem__(self, index: Any) -> Any:
        value = self.value[index]
        for f in self.callables:
            value = f(value)
        return value

    def __len__(self) -> int:
        return len(self.value)


class ZipResult(Sequence[Any]):
    def __init__(self, values: list[Any], *, fillvalue: Any = NO_FILL) -> None:
        self.values = values
        self.fillvalue = fillvalue

    def __getitem__(self, index: Any) -> Any:
        if index >= len(self):
            raise IndexError(index)
        return tuple(_get_or_fill(value, index, self.fillvalue) for value in self.values)

    def __len__(self) -> int:
        lengths = [len(v) for v in self.values]
        return min(lengths) if self.fillvalue is NO_FILL else max(lengths)


def _get_or_fill(container: Any, index: int, fillvalue: Any) -> Any:
    try:
        return container[index]
    except (IndexError, KeyError):
        return fillvalue


class ConcatResult(Sequence[Any]):
    def __init__(self, values: list[Any]) -> None:
        self.values = values

    def __getitem__(self, index: Any) -> Any:
        i = index if index >= 0 else len(self) + index
        for value in self.values:
            if i < 0:
                break
            if i >= len(value):
                i -= len(value)
            elif isinstance(value, Sequence):
                return value[i]
            else:
                return next(itertools.islice(iter(value), i, None))
        raise IndexError("list index out of range")

    def __len__(self) -> int:
        return sum(len(v) for v in self.values)


class MappedArgument:
    """An argument of a ``@task_group`` function expanded with ``.expand(name=...)``: in
    each instance of the group, the element of ``name`` that instance maps over.

    Tasks in the group receive it like an XComArg (it becomes an edge from the
    producers of the expanded value) and it resolves at run time; ``group`` is the
    :class:`~cluster.sdk.mappedgroup.MappedTaskGroup` (typed loosely: the SDK layers).
    """

    def __init__(self, group: Any, key: str) -> None:
        self.group = group
        self.key = key

    def __repr__(self) -> str:
        return f"MappedArgument({self.group.group_id!r}, {self.key!r})"

    def iter_references(self) -> Iterator[tuple[BaseOperator, str]]:
        for operator in self.group.expand_input.iter_references():
            yield operator, XCOM_RETURN_KEY

    def resolve(self, context: Mapping[str, Any]) -> Any:
        """This group instance's share of the expanded value (see ``MappedTaskGroup``)."""
        return self.group.resolve_argument(self.key, context)


def iter_xcom_args(value: Any) -> Iterator[XComArg]:
    """Yield every XComArg nested in ``value`` (lists, tuples, sets, dict values)."""
    if isinstance(value, XComArg):
        yield value
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            yield from iter_xcom_args(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from iter_xcom_args(item)


def iter_producers(value: Any) -> Iterator[BaseOperator]:
    """Every task whose XCom ``value`` reads, however deeply nested or derived (mapped
    task-group arguments included)."""
    if isinstance(value, MappedArgument):
        for operator, _ in value.iter_references():
            yield operator
        return
    if isinstance(value, list | tuple | set | frozenset):
        for item in value:
            yield from iter_producers(item)
        return
    if isinstance(value, dict):
        for item in value.values():
            yield from iter_producers(item)
        return
    for arg in iter_xcom_args(value):
        for operator, _ in arg.iter_references():
            yield operator
