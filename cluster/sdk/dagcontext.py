"""The DAGs and task groups currently open with ``with``, and DAG auto-registration.

Operators created inside ``with DAG(...)`` or ``with TaskGroup(...)`` attach to the
innermost one. The stacks are per process and only change inside ``with`` blocks;
nothing is set up at import.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from cluster.sdk.dag import DAG
    from cluster.sdk.taskgroup import TaskGroup


class DagContext:
    """Stacks of open DAGs and task groups, and the lists capturing finished DAGs."""

    _dags: ClassVar[list[DAG]] = []
    _groups: ClassVar[list[TaskGroup]] = []
    _captures: ClassVar[list[list[DAG]]] = []
    #: > 0 while a mapped task builds the operator of one instance (see :func:`detached`)
    _detached: ClassVar[int] = 0

    @classmethod
    def is_detached(cls) -> bool:
        return cls._detached > 0

    @classmethod
    def push_dag(cls, dag: DAG) -> None:
        cls._dags.append(dag)

    @classmethod
    def pop_dag(cls) -> DAG:
        return cls._dags.pop()

    @classmethod
    def current_dag(cls) -> DAG | None:
        return cls._dags[-1] if cls._dags else None

    @classmethod
    def push_group(cls, group: TaskGroup) -> None:
        cls._groups.append(group)

    @classmethod
    def pop_group(cls) -> TaskGroup:
        return cls._groups.pop()

    @classmethod
    def current_group(cls, dag: DAG | None) -> TaskGroup | None:
        """The innermost open group of ``dag``, else its root group, else ``None``."""
        for group in reversed(cls._groups):
            if group.dag is dag:
                return group
        return dag.task_group if dag is not None else None

    @classmethod
    def register(cls, dag: DAG) -> None:
        """Record a DAG whose definition finished (``with`` exit or ``@dag`` call)."""
        for captured in cls._captures:
            if not any(d is dag for d in captured):
                captured.append(dag)


@contextmanager
def capture_dags() -> Iterator[list[DAG]]:
    """Collect every DAG defined while the block runs, assigned to a global or not.

    This is how a DAG file loader finds DAGs that Airflow would auto-register.
    """
    captured: list[DAG] = []
    DagContext._captures.append(captured)
    try:
        yield captured
    finally:
        DagContext._captures.remove(captured)


@contextmanager
def detached() -> Iterator[None]:
    """Operators built inside the block know their DAG and group but join neither.

    The runner builds one real operator per mapped instance (Airflow's ``unmap``);
    it must not replace the mapped task in the DAG nor add edges to its producers.
    """
    DagContext._detached += 1
    try:
        yield
    finally:
        DagContext._detached -= 1
