"""Task groups in the graph view: which groups hold a task, and keeping them together.

The serialized DAG records each task's innermost group (``task_group_id``) and every
group's parent (``task_groups``). The graph draws a group as a framed, labelled box
around its tasks in each layer; for that the tasks of one group must sit next to each
other in a layer, with nested groups inside their parents. :func:`cluster_column`
reorders a layer that way while keeping the crossing-reducing order as much as it can
(a group takes the place of its first member). Pure functions, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping

from cluster.dagfiles.serialized import SerializedDag

#: a task's groups from the outermost in: ``("section_2", "section_2.inner_section_2")``
GroupPath = tuple[str, ...]


def group_paths(dag: SerializedDag) -> dict[str, GroupPath]:
    """Each task's chain of groups, outermost first (``()`` for tasks in no group).

    Parents come from ``dag.task_groups``; a group missing there (an older serialized
    form) falls back to its dotted prefixes, which is how group ids are built.
    """
    paths: dict[str, GroupPath] = {}
    for task in dag.tasks.values():
        paths[task.task_id] = _chain(task.task_group_id, dag.task_groups)
    return paths


def _chain(group_id: str | None, groups: Mapping[str, object]) -> GroupPath:
    chain: list[str] = []
    seen: set[str] = set()
    while group_id and group_id not in seen:
        seen.add(group_id)
        chain.append(group_id)
        info = groups.get(group_id)
        parent = info.get("parent") if isinstance(info, dict) else None
        if parent is None and info is None and "." in group_id:
            parent = group_id.rsplit(".", 1)[0]
        group_id = parent if isinstance(parent, str) else None
    return tuple(reversed(chain))


def cluster_column(column: list[str], paths: Mapping[str, GroupPath]) -> list[str]:
    """``column`` with every group's members next to each other, nested groups inside.

    Order is otherwise kept: a group is placed where its first member was. Nodes not
    in ``paths`` (edge waypoints) count as in no group.
    """
    return _cluster(column, paths, 0)


def _cluster(nodes: list[str], paths: Mapping[str, GroupPath], level: int) -> list[str]:
    blocks: dict[str, list[str]] = {}
    order: list[tuple[str, str | None]] = []  # (node, None) or (group, group)
    for node in nodes:
        path = paths.get(node, ())
        if len(path) <= level:
            order.append((node, None))
            continue
        group = path[level]
        if group not in blocks:
            blocks[group] = []
            order.append((group, group))
        blocks[group].append(node)
    result: list[str] = []
    for item, block in order:
        if block is None:
            result.append(item)
        else:
            result.extend(_cluster(blocks[block], paths, level + 1))
    return result


def short_label(task_id: str, path: GroupPath) -> str:
    """The task's name inside its innermost group (``section_1.task_1`` → ``task_1``)."""
    if path and task_id.startswith(path[-1] + "."):
        return task_id[len(path[-1]) + 1 :]
    return task_id
