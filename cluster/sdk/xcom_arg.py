"""``XComArg``: a reference to a task's future XCom, used as an argument of another task.

Passing one to an operator (TaskFlow call, or a templated field) makes the producer
upstream of the consumer; at run time :meth:`XComArg.resolve` pulls the value.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from cluster.sdk.setup_teardown import SetupTeardownMixin

if TYPE_CHECKING:
    from cluster.sdk.baseoperator import BaseOperator

XCOM_RETURN_KEY = "return_value"


class XComArg(SetupTeardownMixin):
    """The XCom ``key`` of ``operator``; ``arg["k"]`` selects one of multiple outputs."""

    def __init__(self, operator: BaseOperator, key: str = XCOM_RETURN_KEY) -> None:
        self.operator = operator
        self.key = key

    def __repr__(self) -> str:
        return f"XComArg({self.operator.task_id!r}, key={self.key!r})"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, XComArg) and other.operator is self.operator and other.key == self.key
        )

    def __hash__(self) -> int:
        return hash((id(self.operator), self.key))

    def __getitem__(self, key: str) -> XComArg:
        return XComArg(self.operator, key)

    def __iter__(self) -> Iterator[Any]:
        raise TypeError("'XComArg' object is not iterable: its value only exists at run time")

    @property
    def roots(self) -> list[BaseOperator]:
        return [self.operator]

    @property
    def leaves(self) -> list[BaseOperator]:
        return [self.operator]

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
        """Pull the value from the running task instance in ``context``."""
        return context["ti"].xcom_pull(task_ids=self.operator.task_id, key=self.key)


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
