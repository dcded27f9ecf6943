"""Edges between tasks: ``>>``, ``<<``, lists, labels, and the one function that links.

Every node kind (operator, XComArg, task group, label) derives from
:class:`DependencyMixin` and says which operators stand at its top (``roots``) and
bottom (``leaves``); :func:`link` is the only place an edge is recorded.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from cluster.sdk.definitions import definition_error

if TYPE_CHECKING:
    from cluster.sdk.baseoperator import BaseOperator


def as_nodes(other: Any) -> list[DependencyMixin]:
    """Accept one node or any iterable of nodes, like Airflow's ``set_downstream``."""
    if isinstance(other, DependencyMixin):
        return [other]
    if isinstance(other, Iterable) and not isinstance(other, str):
        nodes = list(other)
        for node in nodes:
            if not isinstance(node, DependencyMixin):
                raise TypeError(f"Relationships can only be set between operators; got {node!r}")
        return nodes
    raise TypeError(f"Relationships can only be set between operators; got {other!r}")


class DependencyMixin:
    """``>>`` / ``<<`` for every node kind; subclasses give ``roots`` and ``leaves``."""

    @property
    def roots(self) -> list[BaseOperator]:
        raise NotImplementedError

    @property
    def leaves(self) -> list[BaseOperator]:
        raise NotImplementedError

    def set_upstream(self, other: Any, edge_modifier: EdgeModifier | None = None) -> None:
        """Make ``other`` (a node or list of nodes) run before this node."""
        for node in as_nodes(other):
            if isinstance(node, EdgeModifier):
                node.set_downstream(self)
                continue
            for upstream in node.leaves:
                for downstream in self.roots:
                    link(upstream, downstream, edge_modifier)

    def set_downstream(self, other: Any, edge_modifier: EdgeModifier | None = None) -> None:
        """Make ``other`` (a node or list of nodes) run after this node."""
        for node in as_nodes(other):
            if isinstance(node, EdgeModifier):
                node.set_upstream(self)
                continue
            for upstream in self.leaves:
                for downstream in node.roots:
                    link(upstream, downstream, edge_modifier)

    def __rshift__(self, other: Any) -> Any:
        self.set_downstream(other)
        return other

    def __lshift__(self, other: Any) -> Any:
        self.set_upstream(other)
        return other

    def __rrshift__(self, other: Any) -> Any:
        """``[a, b] >> self``."""
        self.set_upstream(other)
        return self

    def __rlshift__(self, other: Any) -> Any:
        """``[a, b] << self``."""
        self.set_downstream(other)
        return self


class EdgeModifier(DependencyMixin):
    """A node that stands on edges instead of being a task: ``a >> Label("x") >> b``.

    It remembers what was put on each side and links every upstream to every
    downstream once both are known, in either order.
    """

    def __init__(self, label: str | None = None) -> None:
        self.label = label
        self._upstream: list[DependencyMixin] = []
        self._downstream: list[DependencyMixin] = []

    @property
    def roots(self) -> list[BaseOperator]:
        return []

    @property
    def leaves(self) -> list[BaseOperator]:
        return []

    def set_upstream(self, other: Any, edge_modifier: EdgeModifier | None = None) -> None:
        for node in as_nodes(other):
            self._upstream.append(node)
            for downstream in self._downstream:
                node.set_downstream(downstream, edge_modifier=self)

    def set_downstream(self, other: Any, edge_modifier: EdgeModifier | None = None) -> None:
        for node in as_nodes(other):
            self._downstream.append(node)
            for upstream in self._upstream:
                upstream.set_downstream(node, edge_modifier=self)


class Label(EdgeModifier):
    """A text shown on an edge in the graph view (``airflow.utils.edgemodifier.Label``)."""

    def __init__(self, label: str) -> None:
        super().__init__(label)


def link(upstream: BaseOperator, downstream: BaseOperator, label: EdgeModifier | None) -> None:
    """Record the edge ``upstream → downstream`` (and its label) in their DAG.

    A task without a DAG joins the other's DAG, like Airflow.

    :raises DagDefinitionError: when neither task has a DAG or they have different DAGs.
    """
    dags = {id(t.dag): t.dag for t in (upstream, downstream) if t.dag is not None}
    if not dags:
        raise definition_error(
            "Tried to create relationships between tasks that don't have DAGs yet. "
            "Set the DAG for at least one task and try again: "
            f"{[upstream.task_id, downstream.task_id]}"
        )
    if len(dags) > 1:
        raise definition_error(
            "Tried to set relationships between tasks in more than one DAG: "
            f"{sorted(d.dag_id for d in dags.values() if d is not None)}"
        )
    (dag,) = dags.values()
    assert dag is not None
    for task in (upstream, downstream):
        if task.dag is None:
            task.dag = dag
    upstream.downstream_task_ids.add(downstream.task_id)
    downstream.upstream_task_ids.add(upstream.task_id)
    if label is not None and label.label is not None:
        dag.edge_info[(upstream.task_id, downstream.task_id)] = label.label


def chain(*tasks: Any) -> None:
    """Link tasks in sequence; adjacent lists must have equal length and pair up.

    ``chain(t1, [t2, t3], [t4, t5], t6)`` is ``t1 >> [t2, t3]``, ``t2 >> t4``,
    ``t3 >> t5``, ``[t4, t5] >> t6``, exactly as in Airflow.
    """
    for up, down in itertools.pairwise(tasks):
        up_is_list = not isinstance(up, DependencyMixin)
        down_is_list = not isinstance(down, DependencyMixin)
        if not up_is_list:
            up.set_downstream(down)
        elif not down_is_list:
            down.set_upstream(up)
        else:
            ups, downs = list(up), list(down)
            if len(ups) != len(downs):
                raise ValueError(
                    f"Chain not supported for different length Iterable. "
                    f"Got {len(ups)} and {len(downs)}."
                )
            for u, d in zip(ups, downs, strict=True):
                u.set_downstream(d)


def cross_downstream(from_tasks: Sequence[Any], to_tasks: Any) -> None:
    """Make every task of ``from_tasks`` upstream of every task of ``to_tasks``."""
    for task in from_tasks:
        task.set_downstream(to_tasks)
