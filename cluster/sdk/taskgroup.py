"""Task groups: a folder of tasks in the UI, a prefix for task ids, a unit for ``>>``.

``group >> task`` links the group's leaves (tasks with no downstream inside the group)
and ``task >> group`` its roots, like Airflow. Each DAG has a root group with id ``None``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cluster.sdk.dagcontext import DagContext
from cluster.sdk.definitions import Site, definition_error, user_site, validate_key
from cluster.sdk.dependencies import DependencyMixin

if TYPE_CHECKING:
    from cluster.sdk.baseoperator import BaseOperator
    from cluster.sdk.dag import DAG


class TaskGroup(DependencyMixin):
    """A group of tasks and nested groups.

    :param prefix_group_id: prefix children's ids with ``group_id.`` (default ``True``).
    :param add_suffix_on_collision: give ``group__1`` instead of failing on a taken id
        (used by ``@task_group`` when the function is called twice).
    :raises DagDefinitionError: on a duplicate group id, or a group outside any DAG.
    """

    #: what a mapped task group expands over (``None``: not mapped)
    expand_input: Any = None

    def __init__(
        self,
        group_id: str | None,
        prefix_group_id: bool = True,
        parent_group: TaskGroup | None = None,
        dag: DAG | None = None,
        default_args: dict[str, Any] | None = None,
        tooltip: str = "",
        ui_color: str = "CornflowerBlue",
        ui_fgcolor: str = "#000",
        add_suffix_on_collision: bool = False,
        group_display_name: str = "",
    ) -> None:
        self._site: Site = user_site()
        self.prefix_group_id = prefix_group_id
        self.default_args = dict(default_args or {})
        self.tooltip = tooltip
        self.ui_color = ui_color
        self.ui_fgcolor = ui_fgcolor
        self.children: dict[str, BaseOperator | TaskGroup] = {}
        self._group_id = group_id
        if group_id is None:  # the root group of a DAG
            self.parent_group: TaskGroup | None = None
            self.dag: DAG | None = dag
            return
        validate_key(group_id, "group_id", self._site)
        if dag is None:
            dag = parent_group.dag if parent_group is not None else DagContext.current_dag()
        if dag is None:
            raise definition_error(f"TaskGroup {group_id!r} must be created inside a DAG")
        self.dag = dag
        self.parent_group = parent_group or DagContext.current_group(dag)
        self._claim_id(add_suffix_on_collision)

    def _claim_id(self, add_suffix_on_collision: bool) -> None:
        assert self.dag is not None and self.parent_group is not None
        base = self._group_id
        taken = self.dag.task_group_dict
        if self.group_id in taken or self.group_id in self.dag.task_dict:
            if not add_suffix_on_collision:
                raise definition_error(
                    f"The group_id {self.group_id!r} has already been added to the DAG",
                    self._site,
                )
            suffix = 1
            while self.group_id in taken:
                self._group_id = f"{base}__{suffix}"
                suffix += 1
        assert self.group_id is not None
        taken[self.group_id] = self
        self.parent_group.children[self.group_id] = self

    def __repr__(self) -> str:
        return f"<TaskGroup: {self.group_id}>"

    @property
    def group_id(self) -> str | None:
        parent = self.parent_group
        if parent is not None and parent.prefix_group_id and parent._group_id:
            return parent.child_id(self._group_id or "")
        return self._group_id

    @property
    def label(self) -> str | None:
        return self._group_id

    @property
    def is_root(self) -> bool:
        return self._group_id is None

    def child_id(self, label: str) -> str:
        """The full id of a child called ``label``."""
        if self.prefix_group_id and self.group_id:
            return f"{self.group_id}.{label}"
        return label

    def add(self, task: BaseOperator) -> None:
        if task.task_id in self.children:
            raise definition_error(
                f"Task id {task.task_id!r} has already been added to the group", task._site
            )
        self.children[task.task_id] = task

    def mapped_ancestors(self) -> list[TaskGroup]:
        """This group and the groups around it that are mapped, innermost first."""
        found: list[TaskGroup] = []
        group: TaskGroup | None = self
        while group is not None:
            if group.expand_input is not None:
                found.append(group)
            group = group.parent_group
        return found

    def inherited_default_args(self) -> dict[str, Any]:
        """default_args of the enclosing groups, inner ones winning."""
        outer = self.parent_group.inherited_default_args() if self.parent_group else {}
        return {**outer, **self.default_args}

    def iter_tasks(self) -> list[BaseOperator]:
        """Every task in this group and its nested groups."""
        tasks: list[BaseOperator] = []
        for child in self.children.values():
            if isinstance(child, TaskGroup):
                tasks.extend(child.iter_tasks())
            else:
                tasks.append(child)
        return tasks

    @property
    def roots(self) -> list[BaseOperator]:
        """Tasks with no upstream inside the group: what ``x >> group`` links to."""
        tasks = self.iter_tasks()
        ids = {t.task_id for t in tasks}
        return [t for t in tasks if not (t.upstream_task_ids & ids)]

    @property
    def leaves(self) -> list[BaseOperator]:
        """Tasks with no downstream inside the group: what ``group >> x`` links from.

        A teardown at the end of the group is looked through, as in Airflow: ``group >>
        x`` waits for the work before the teardown, not for the clean-up.
        """
        tasks = self.iter_tasks()
        ids = {t.task_id for t in tasks}
        found: dict[str, BaseOperator] = {}
        for task in tasks:
            if task.downstream_task_ids & ids:
                continue
            if not task.is_teardown:
                found[task.task_id] = task
            else:
                found.update((t.task_id, t) for t in _work_before_teardown(task, ids))
        return list(found.values())

    def __enter__(self) -> TaskGroup:
        DagContext.push_group(self)
        return self

    def __exit__(self, *exc: object) -> None:
        DagContext.pop_group()


def _work_before_teardown(teardown: BaseOperator, ids: set[str]) -> list[BaseOperator]:
    """The last work tasks of a group before its ``teardown`` (Airflow's ``get_leaves``):
    through chained teardowns, never through the setup-to-teardown edge, and only tasks
    whose other downstream tasks in the group are all teardowns."""
    found: list[BaseOperator] = []
    for upstream in teardown.upstream_list:
        if upstream.task_id not in ids:
            continue
        if upstream.is_teardown:
            found.extend(_work_before_teardown(upstream, ids))
        elif upstream.is_setup:
            continue
        elif not any(
            d.task_id in ids and d.task_id != teardown.task_id and not d.is_teardown
            for d in upstream.downstream_list
        ):
            found.append(upstream)
    return found
