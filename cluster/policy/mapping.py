"""Dynamic task mapping as pure decisions: how many instances, and which upstream ones count.

A task *needs expansion* when it is mapped (``partial().expand()``) or sits inside a
mapped task group. Its instance count is the product of its mapped groups' lengths
(outermost first) times its own expansion length; each length comes from a literal
(known when the run is created) or from a producer's pushed value (known once it ran:
the loop passes those as ``lengths``). As in Airflow, a run creates ``0..n-1`` at once
for literal counts and one placeholder (``map_index = -1``) otherwise, which is
expanded when its trigger rule lets it run.

Inside a mapped group, instance ``i`` of a task only depends on the matching instance
of an upstream in the same group (Airflow's ``get_relevant_upstream_map_indexes``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from cluster.dagfiles.serialized import SerializedDag

#: ``lengths`` key → length, for producers that pushed the value a mapping reads
Lengths = Mapping[str, int]


def ref_length(ref: Mapping[str, Any], lengths: Lengths) -> int | None:
    """The length of one expanded value, or ``None`` while (or if) it is unknown.

    ``zip`` is as long as its shortest input (the longest with ``fillvalue``),
    ``concat`` the sum of its inputs, ``map`` as long as its input.
    """
    kind = ref["type"]
    if kind == "literal":
        return int(ref["length"])
    if kind == "xcom":
        return lengths.get(ref["task_id"])
    if kind == "map":
        return ref_length(ref["arg"], lengths)
    parts = [ref_length(arg, lengths) for arg in ref["args"]]
    known = [p for p in parts if p is not None]
    if len(known) != len(parts):
        return None
    if kind == "zip":
        return max(known) if "fillvalue" in ref else min(known)
    if kind == "concat":
        return sum(known)
    raise ValueError(f"unknown mapping reference type {kind!r}")


def expansion_length(mapping: Mapping[str, Any], lengths: Lengths) -> int | None:
    """How many instances one ``expand``/``expand_kwargs`` gives (``None``: not known yet)."""
    if mapping["kind"] == "list-of-dicts":
        return ref_length(mapping["arg"], lengths)
    count = 1
    for ref in mapping["args"].values():
        length = ref_length(ref, lengths)
        if length is None:
            return None
        count *= length
    return count


def iter_ref_producers(ref: Mapping[str, Any]) -> Iterator[str]:
    kind = ref["type"]
    if kind == "xcom":
        yield ref["task_id"]
    elif kind == "map":
        yield from iter_ref_producers(ref["arg"])
    elif kind in ("zip", "concat"):
        for arg in ref["args"]:
            yield from iter_ref_producers(arg)
    elif kind == "literal" and isinstance(ref.get("value"), list):
        for item in ref["value"]:  # expand_kwargs over a list of dicts and XComArgs
            if isinstance(item, dict) and item.get("type") in ("xcom", "map", "zip", "concat"):
                yield from iter_ref_producers(item)


def mapping_producers(mapping: Mapping[str, Any]) -> set[str]:
    refs = [mapping["arg"]] if mapping["kind"] == "list-of-dicts" else mapping["args"].values()
    return {task_id for ref in refs for task_id in iter_ref_producers(ref)}


def needs_expansion(dag: SerializedDag, task_id: str) -> bool:
    return dag.tasks[task_id].mapping is not None or task_id in dag.mapped_groups


def _mappings(dag: SerializedDag, task_id: str) -> list[Mapping[str, Any]]:
    """The task's mappings, outermost group first, its own last."""
    found = [dag.task_groups[g]["mapping"] for g in reversed(dag.mapped_groups.get(task_id, ()))]
    own = dag.tasks[task_id].mapping
    return [*found, own] if own is not None else found


def producers(dag: SerializedDag, task_ids: Iterable[str] | None = None) -> set[str]:
    """The tasks whose pushed lengths decide the counts of ``task_ids`` (default: all)."""
    ids = dag.tasks if task_ids is None else task_ids
    return {p for t in ids for m in _mappings(dag, t) for p in mapping_producers(m)}


def instance_count(dag: SerializedDag, task_id: str, lengths: Lengths) -> int | None:
    """How many instances the task gets, or ``None`` while a length is unknown."""
    count = 1
    for mapping in _mappings(dag, task_id):
        length = expansion_length(mapping, lengths)
        if length is None:
            return None
        count *= length
    return count


def group_count(dag: SerializedDag, group_id: str, lengths: Lengths) -> int | None:
    """How many times the tasks directly in mapped group ``group_id`` run."""
    count = 1
    while group_id is not None:
        group = dag.task_groups[group_id]
        if group.get("mapping") is not None:
            length = expansion_length(group["mapping"], lengths)
            if length is None:
                return None
            count *= length
        group_id = group.get("parent")
    return count


def initial_map_indexes(dag: SerializedDag, task_id: str) -> range | tuple[int]:
    """The map indexes to create with the run: ``0..n-1`` for a literal count ``n > 0``,
    else the placeholder ``-1`` (expanded later, or skipped when empty)."""
    if not needs_expansion(dag, task_id):
        return (-1,)
    count = instance_count(dag, task_id, {})
    return range(count) if count else (-1,)


def relevant_indexes(
    dag: SerializedDag, task_id: str, map_index: int, upstream_id: str, lengths: Lengths
) -> set[int] | range | None:
    """Which expanded instances of ``upstream_id`` instance ``map_index`` depends on.

    ``None`` means all of them (no common mapped group). Unexpanded placeholders of
    the upstream always count, and are not listed. Where the upstream is mapped
    further inside the common group, the block of its instances under the same
    group instance counts (Airflow 2.10 divides by the downstream's count there,
    which only agrees when both are mapped equally deep). A task directly in a mapped
    group with a ``one_*`` rule sees every instance of an upstream its groups do not
    expand over, as in Airflow (``is_fast_triggered``).
    """
    groups = dag.mapped_groups.get(task_id)
    if not groups or _fast_triggered_by(dag, task_id, upstream_id, groups):
        return None
    upstream_groups = dag.mapped_groups.get(upstream_id, ())
    common = next((g for g in upstream_groups if g in groups), None)
    if common is None:
        return None
    if map_index < 0:
        return set()
    own = instance_count(dag, task_id, lengths)
    ancestor = group_count(dag, common, lengths)
    if not own or not ancestor:
        return None
    index = map_index * ancestor // own
    further = dag.tasks[upstream_id].mapping is not None or upstream_groups[0] != common
    if not further:
        return {index}
    upstream_count = instance_count(dag, upstream_id, lengths)
    if upstream_count is None:
        return None
    size = upstream_count // ancestor
    return range(index * size, index * size + size)


#: rules that may fire on the first finished upstream (Airflow's ``is_fast_triggered``)
FAST_TRIGGERED = frozenset({"one_success", "one_failed", "one_done"})


def _fast_triggered_by(
    dag: SerializedDag, task_id: str, upstream_id: str, groups: tuple[str, ...]
) -> bool:
    """Airflow 2.10's exception in ``_get_relevant_upstream_map_indexes``: a task whose own
    group is mapped, with a ``one_*`` rule, counts all of an upstream's instances unless
    one of its groups expands over that upstream's value."""
    task = dag.tasks[task_id]
    if task.trigger_rule not in FAST_TRIGGERED or task.task_group_id != groups[0]:
        return False
    return upstream_id not in producers(dag, [task_id])


def revised_indexes(existing: Iterable[int], count: int) -> tuple[list[int], list[int]]:
    """``(added, surplus)``: the map indexes an expanded task lacks for ``count`` instances,
    and those at or past ``count``. An index that exists stays as it is, ``removed``
    included, as in Airflow."""
    have = {i for i in existing if i >= 0}
    return [i for i in range(count) if i not in have], sorted(i for i in have if i >= count)
