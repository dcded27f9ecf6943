"""What a mapped task or task group expands over, and how one instance's share is picked.

``expand(x=[1, 2], y=xcom)`` is a :class:`DictOfListsExpandInput`: one instance per
element of the cross product, the last argument varying fastest (Airflow's order);
``expand_kwargs(...)`` is a :class:`ListOfDictsExpandInput`: one instance per dict.
Literal values are known when the DAG file is parsed; XComArgs only when their
producer has run. :meth:`to_ref` is the serialized form the scheduler reads to count
instances; :meth:`resolve` is what the runner calls for one ``map_index``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cluster.sdk.xcom_arg import XCOM_RETURN_KEY, XComArg, iter_xcom_args

if TYPE_CHECKING:
    from cluster.sdk.baseoperator import BaseOperator


def is_mappable(value: Any) -> bool:
    """What ``expand`` accepts for one argument: an XComArg, a list-like or a dict."""
    return isinstance(value, XComArg | Mapping | Sequence) and not isinstance(value, str | bytes)


def ensure_return_value(value: Any) -> None:
    """:raises ValueError: for an XComArg over a custom key (only return values map)."""
    for arg in iter_xcom_args(value):
        for operator, key in arg.iter_references():
            if key != XCOM_RETURN_KEY:
                raise ValueError(f"cannot map over XCom with custom key {key!r} from {operator}")


def literal_ref(value: Any) -> dict[str, Any]:
    """The serialized form of a literal list or dict: its length and a JSON-safe copy."""
    return {"type": "literal", "length": len(value), "value": _json_safe(value)}


def _json_safe(value: Any) -> Any:
    try:
        return json.loads(json.dumps(value, default=repr))
    except (TypeError, ValueError):
        return repr(value)


def value_ref(value: Any) -> dict[str, Any]:
    """The serialized form of one expanded argument (literal or XComArg chain)."""
    if isinstance(value, XComArg):
        return value.to_ref()
    return literal_ref(value)


def _pick(value: Any, index: int) -> Any:
    """The ``index``-th element: an item of a sequence, a ``(key, value)`` of a dict."""
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return value[index]
    if isinstance(value, Mapping):
        for i, item in enumerate(value.items()):
            if i == index:
                return item
        raise IndexError(f"index {index} is over mapped length")
    raise TypeError(f"can't map over value of type {type(value).__name__}")


@dataclass(frozen=True)
class Resolved:
    """One instance's arguments, and the ids of values read from XComs (never templated)."""

    kwargs: dict[str, Any]
    from_xcom: frozenset[int]
    count: int


@dataclass(frozen=True)
class DictOfListsExpandInput:
    """``expand(name=values, ...)``: the cross product of every named value."""

    value: dict[str, Any]

    kind = "dict-of-lists"

    def iter_references(self) -> Iterator[BaseOperator]:
        for arg in iter_xcom_args(list(self.value.values())):
            for operator, _ in arg.iter_references():
                yield operator

    def literal_count(self) -> int | None:
        """How many instances, when every value is literal; else ``None``."""
        count = 1
        for value in self.value.values():
            if isinstance(value, XComArg):
                return None
            count *= len(value)
        return count

    def to_ref(self) -> dict[str, Any]:
        return {"kind": self.kind, "args": {k: value_ref(v) for k, v in self.value.items()}}

    def length(self, context: Mapping[str, Any]) -> int:
        """How many instances, reading XComs through ``context`` where needed."""
        count = 1
        for value in self.value.values():
            count *= len(value.resolve(context) if isinstance(value, XComArg) else value)
        return count

    def resolve(self, context: Mapping[str, Any], index: int) -> Resolved:
        """The arguments of instance ``index`` (its share of the cross product)."""
        values: dict[str, Any] = {}
        from_xcom: set[int] = set()
        for name, value in self.value.items():
            values[name] = value.resolve(context) if isinstance(value, XComArg) else value
        lengths = {name: len(v) for name, v in values.items()}
        count = 1
        for length in lengths.values():
            count *= length
        kwargs: dict[str, Any] = {}
        rest = index
        for name in reversed(self.value):
            length = lengths[name]
            if length < 1:
                raise RuntimeError(f"cannot expand field mapped to length {length!r}")
            kwargs[name] = _pick(values[name], rest % length)
            rest //= length
            if isinstance(self.value[name], XComArg):
                from_xcom.add(id(kwargs[name]))
        return Resolved(dict(reversed(list(kwargs.items()))), frozenset(from_xcom), count)


@dataclass(frozen=True)
class ListOfDictsExpandInput:
    """``expand_kwargs(list_of_dicts_or_xcom)``: one instance per dict."""

    value: Any

    kind = "list-of-dicts"

    def iter_references(self) -> Iterator[BaseOperator]:
        for arg in iter_xcom_args(
            self.value if isinstance(self.value, XComArg) else list(self.value)
        ):
            for operator, _ in arg.iter_references():
                yield operator

    def literal_count(self) -> int | None:
        return None if isinstance(self.value, XComArg) else len(self.value)

    def length(self, context: Mapping[str, Any]) -> int:
        if isinstance(self.value, XComArg):
            return len(self.value.resolve(context))
        return len(self.value)

    def to_ref(self) -> dict[str, Any]:
        if isinstance(self.value, XComArg):
            return {"kind": self.kind, "arg": self.value.to_ref()}
        items = [v.to_ref() if isinstance(v, XComArg) else _json_safe(v) for v in self.value]
        return {"kind": self.kind, "arg": {"type": "literal", "length": len(items), "value": items}}

    def resolve(self, context: Mapping[str, Any], index: int) -> Resolved:
        """The keyword arguments of instance ``index``.

        :raises ValueError: when the value is not a list of dicts with string keys.
        """
        from_xcom = isinstance(self.value, XComArg)
        mappings = self.value.resolve(context) if from_xcom else self.value
        if not isinstance(mappings, Sequence) or isinstance(mappings, str):
            raise ValueError(f"expand_kwargs() expects a list[dict], not {_type(mappings)}")
        mapping = mappings[index]
        if isinstance(mapping, XComArg):
            mapping = mapping.resolve(context)
            from_xcom = True
        if not isinstance(mapping, Mapping):
            raise ValueError(f"expand_kwargs() expects a list[dict], not list[{_type(mapping)}]")
        for key in mapping:
            if not isinstance(key, str):
                raise ValueError(
                    "expand_kwargs() input dict keys must all be str, "
                    f"but {key!r} is of type {_type(key)}"
                )
        ids = frozenset(id(v) for v in mapping.values()) if from_xcom else frozenset()
        return Resolved(dict(mapping), ids, len(mappings))


ExpandInput = DictOfListsExpandInput | ListOfDictsExpandInput


def _type(value: Any) -> str:
    return "None" if value is None else type(value).__name__
