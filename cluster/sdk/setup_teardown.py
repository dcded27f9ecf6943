"""Setup and teardown tasks (Airflow 2.7+): ``as_setup()``, ``as_teardown(setups=...)``
and the ``with`` form that puts work between them.

A setup creates a resource, a teardown removes it; the teardown runs when its work is
done even if the work failed (trigger rule ``all_done_setup_success``), and by default
its own failure does not fail the run. The scheduler learns all of this from three
flags per task in the serialized form (``is_setup``, ``is_teardown``,
``on_failure_fail_dagrun``); what this module adds at definition time is the edges.

``with teardown.as_teardown(setups=setup): work()`` (or ``with setup >> teardown:``,
since ``>>`` returns its right side) links the work tasks created inside the block
between them, as Airflow's ``SetupTeardownContext`` does: the setups found upstream of
the teardown go before the block's roots, the teardown after its leaves; nested blocks
chain outer setup before inner setup and inner teardown before outer teardown.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from cluster.sdk.definitions import definition_error
from cluster.sdk.dependencies import DependencyMixin
from cluster.sdk.trigger_rule import TriggerRule

if TYPE_CHECKING:
    from cluster.sdk.baseoperator import BaseOperator


def _operators(node: Any) -> list[BaseOperator]:
    """The operators behind a task, an XComArg, or a list of either."""
    if isinstance(node, DependencyMixin) and hasattr(node, "setup_teardown_operators"):
        operators: list[BaseOperator] = node.setup_teardown_operators()
        return operators
    if isinstance(node, Iterable) and not isinstance(node, str):
        return [op for item in node for op in _operators(item)]
    raise TypeError(f"setups must be tasks or XComArgs, got {node!r}")


class SetupTeardownMixin(DependencyMixin):
    """``as_setup``, ``as_teardown`` and the ``with`` form, for operators and XComArgs.

    Subclasses say which operators they stand for (:meth:`setup_teardown_operators`);
    the flags themselves live on the operators.
    """

    def setup_teardown_operators(self) -> list[BaseOperator]:
        raise NotImplementedError

    def as_setup(self) -> Any:
        """Mark this task as a setup task; returns ``self`` so it chains."""
        for operator in self.setup_teardown_operators():
            operator.is_setup = True
        return self

    def as_teardown(self, *, setups: Any = None, on_failure_fail_dagrun: bool | None = None) -> Any:
        """Mark this task as a teardown of ``setups`` (marked as setups and linked before it).

        Its trigger rule becomes ``all_done_setup_success``: it runs once its upstream
        tasks are done, failed or not, if at least one of its setups succeeded.

        :param on_failure_fail_dagrun: let this teardown's failure fail the run (by
            default a teardown's failure is ignored when the run's state is decided).
        """
        for operator in self.setup_teardown_operators():
            operator.is_teardown = True
            operator.trigger_rule = TriggerRule.ALL_DONE_SETUP_SUCCESS
            if on_failure_fail_dagrun is not None:
                operator.on_failure_fail_dagrun = on_failure_fail_dagrun
            if setups is not None:
                for setup in _operators(setups):
                    setup.is_setup = True
                    setup.set_downstream(operator)
        return self

    def __enter__(self) -> Any:
        operators = self.setup_teardown_operators()
        ScopeStack.open(operators)
        return ScopeStack

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        ScopeStack.close(link=exc_type is None)


@dataclass
class _Scope:
    """One open ``with`` block: its setup or teardown tasks, their counterparts, and
    the tasks created inside it."""

    tasks: list[BaseOperator]
    is_setup: bool
    #: the teardowns found downstream of a setup scope, or setups upstream of a teardown one
    counterparts: list[BaseOperator]
    created: list[BaseOperator] = field(default_factory=list)

    def work(self) -> list[BaseOperator]:
        """The work tasks of the block: those created inside it that ended up neither
        setup nor teardown (an operator is marked after it is built)."""
        return [t for t in self.created if not t.is_setup and not t.is_teardown]


class ScopeStack:
    """The open ``with setup_or_teardown:`` blocks of this process, innermost last."""

    _scopes: ClassVar[list[_Scope]] = []

    @classmethod
    def open(cls, operators: list[BaseOperator]) -> None:
        """:raises DagDefinitionError: unless every task is a setup, or every one a teardown."""
        if not operators or not all(t.is_setup or t.is_teardown for t in operators):
            raise definition_error("Only setup/teardown tasks can be used as context managers.")
        if any(t.is_setup != operators[0].is_setup for t in operators):
            raise definition_error("All tasks in the list must be either setup or teardown tasks")
        is_setup = operators[0].is_setup
        if is_setup:
            counterparts = _nearest(operators[0], lambda t: t.is_teardown, downstream=True)
        else:
            counterparts = _nearest(operators[0], lambda t: t.is_setup, downstream=False)
        cls._scopes.append(_Scope(list(operators), is_setup, counterparts))

    @classmethod
    def record(cls, task: BaseOperator) -> None:
        """A task was created: it belongs to the innermost setup and teardown blocks."""
        for is_setup in (True, False):
            scope = cls._innermost(is_setup)
            if scope is not None:
                scope.created.append(task)

    @classmethod
    def close(cls, *, link: bool = True) -> None:
        scope = cls._scopes.pop()
        if link:
            _link_scope(scope)
            outer = cls._innermost(scope.is_setup)
            if outer is not None:
                _link_nested(outer, scope)

    @classmethod
    def _innermost(cls, is_setup: bool) -> _Scope | None:
        for scope in reversed(cls._scopes):
            if scope.is_setup == is_setup:
                return scope
        return None


def _nearest(start: BaseOperator, wanted: Any, *, downstream: bool) -> list[BaseOperator]:
    """Airflow's search for a setup's teardowns (or a teardown's setups): among the
    task's direct downstream (upstream) tasks, else among their neighbours in either
    direction, ring by ring, the first ring that has any."""
    ring = start.downstream_list if downstream else start.upstream_list
    seen = {start.task_id}
    while ring:
        found = [t for t in ring if wanted(t)]
        if found:
            return found
        seen.update(t.task_id for t in ring)
        neighbours = {n.task_id: n for t in ring for n in (*t.downstream_list, *t.upstream_list)}
        ring = [n for task_id, n in neighbours.items() if task_id not in seen]
    return []


def _link_scope(scope: _Scope) -> None:
    """Put the block's work between the scope's setups and teardowns."""
    work = scope.work()
    if not work:
        return
    roots = [t for t in work if not t.upstream_task_ids] or [work[0]]
    leaves = [t for t in work if not t.downstream_task_ids] or [work[-1]]
    setups, teardowns = (
        (scope.tasks, scope.counterparts) if scope.is_setup else (scope.counterparts, scope.tasks)
    )
    for setup in setups:
        setup.set_downstream(roots)
    for teardown in teardowns:
        teardown.set_upstream(leaves)


def _link_nested(outer: _Scope, inner: _Scope) -> None:
    """Nested blocks: the outer setups run before the inner ones, the inner teardowns
    before the outer ones."""
    for outer_task in outer.tasks + outer.counterparts:
        for inner_task in inner.tasks + inner.counterparts:
            if outer_task.is_setup and inner_task.is_setup:
                outer_task.set_downstream(inner_task)
            elif outer_task.is_teardown and inner_task.is_teardown:
                inner_task.set_downstream(outer_task)


def check_setup_downstream(tasks: Iterable[BaseOperator]) -> None:
    """Airflow's rule: a setup's direct downstream work tasks keep ``all_success``, so
    that clearing an indirect setup behaves the same wherever it is.

    :raises DagDefinitionError: naming the setup and the task.
    """
    for task in tasks:
        if not task.is_setup or task.dag is None:
            continue
        for down in task.downstream_list:
            if not down.is_teardown and down.trigger_rule != TriggerRule.ALL_SUCCESS:
                raise definition_error(
                    "Setup tasks must be followed with trigger rule ALL_SUCCESS: "
                    f"{down.task_id!r} after setup {task.task_id!r} has {down.trigger_rule}",
                    down._site,
                )
