"""The graph view of a DAG: a layered layout computed in Python, drawn as SVG.

Pure functions over a :class:`SerializedDag`, no browser-side layout library:

1. :func:`assign_layers` puts every task one layer right of its deepest upstream task
   (longest-path layering), so edges always point right;
2. edges that skip layers get invisible waypoints, one per skipped layer, so long
   edges take part in the ordering instead of cutting through everything;
3. :func:`order_layers` sweeps right and left a few times, sorting each layer by the
   mean position of its neighbours (the barycentric heuristic) and keeping the order
   with the fewest crossings;
4. task groups (:mod:`cluster.web.taskgroups`) are kept together in each layer,
   nested groups inside their parents, with room left around them for a frame;
5. :func:`layout_dag` stacks each layer's boxes top to bottom, so boxes of one layer
   can never overlap, frames each group's tasks in each layer it spans (labelled in
   its first), widens the gap after a layer to fit the labels (``Label``) of the edges
   leaving it, and :func:`render_svg` draws it all, boxes coloured by state.

A 200-task DAG lays out in milliseconds; very wide layers simply make a tall picture
that the page scrolls. Inside a group a task shows its own name (``task_1``); the
full id is in its tooltip.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from itertools import pairwise

from markupsafe import Markup, escape

from cluster.dagfiles.serialized import SerializedDag
from cluster.web.taskgroups import GroupPath, cluster_column, group_paths, short_label

NODE_HEIGHT = 28.0
WAYPOINT_HEIGHT = 8.0
V_GAP = 12.0
H_GAP = 72.0
MARGIN = 16.0
CHAR_WIDTH = 7.2
MIN_WIDTH = 80.0
MAX_WIDTH = 240.0
SWEEPS = 6
#: room around a group's tasks, per level of nesting, on every side
GROUP_PAD = 8.0
#: deeper nesting than this is drawn, but gets no more padding
MAX_GROUP_DEPTH = 3
LABEL_CHAR_WIDTH = 6.0
LABEL_HEIGHT = 14.0
#: what a setup's and a teardown's box show before the name (Airflow's arrow icons)
ROLE_MARKS = {"setup": "↑ ", "teardown": "↓ "}
#: longest edge label shown in full; longer ones are cut (the tooltip has them whole)
MAX_LABEL = 40

#: waypoint ids start with a character no task id may contain
_WAYPOINT = "\x00"


@dataclass(frozen=True)
class NodeBox:
    """Where one task's box sits; ``x, y`` is its top-left corner."""

    task_id: str
    layer: int
    x: float
    y: float
    width: float
    height: float
    #: the text in the box: the task's name inside its innermost group
    label: str = ""
    #: ``"setup"``, ``"teardown"`` or ``""``: marked with an arrow up or down, as in Airflow
    role: str = ""


@dataclass(frozen=True)
class EdgePath:
    """One edge from the right side of ``source`` to the left side of ``target``."""

    source: str
    target: str
    points: tuple[tuple[float, float], ...]
    label: str | None = None


@dataclass(frozen=True)
class GroupBox:
    """The frame of one task group around its tasks in one layer.

    ``level`` is the nesting depth (0: a top-level group); ``first`` marks the
    leftmost layer of the group, where its name is written.
    """

    group_id: str
    layer: int
    level: int
    x: float
    y: float
    width: float
    height: float
    first: bool


@dataclass(frozen=True)
class Layout:
    nodes: dict[str, NodeBox]
    edges: list[EdgePath]
    width: float
    height: float
    groups: list[GroupBox] = field(default_factory=list)


def assign_layers(dag: SerializedDag) -> dict[str, int]:
    """Each task's layer: 0 for roots, else one more than its deepest upstream task.

    Tasks on a cycle (which a serialized DAG never has) go one layer past the rest,
    so a broken DAG still draws.
    """
    pending = {t.task_id: len(t.upstream_task_ids) for t in dag.tasks.values()}
    layer = {task_id: 0 for task_id, n in pending.items() if n == 0}
    ready = list(layer)
    while ready:
        task_id = ready.pop()
        for down in dag.tasks[task_id].downstream_task_ids:
            if down not in pending:
                continue
            layer[down] = max(layer.get(down, 0), layer[task_id] + 1)
            pending[down] -= 1
            if pending[down] == 0:
                ready.append(down)
    last = max(layer.values(), default=-1) + 1
    return {task_id: layer.get(task_id, last) for task_id in dag.tasks}


def task_order(dag: SerializedDag) -> list[str]:
    """Task ids by layer, then in definition order: the rows of the grid view."""
    layers = assign_layers(dag)
    position = {task_id: i for i, task_id in enumerate(dag.tasks)}
    return sorted(dag.tasks, key=lambda t: (layers[t], position[t]))


def _edges(dag: SerializedDag) -> list[tuple[str, str]]:
    return [
        (task.task_id, down)
        for task in dag.tasks.values()
        for down in task.downstream_task_ids
        if down in dag.tasks
    ]


def _with_waypoints(
    dag: SerializedDag, layers: dict[str, int]
) -> tuple[list[list[str]], list[tuple[str, str]], dict[tuple[str, str], list[str]]]:
    """Layers of ids (tasks and waypoints), the unit-length edges, each edge's chain."""
    columns: list[list[str]] = [[] for _ in range(max(layers.values(), default=-1) + 1)]
    for task_id in dag.tasks:
        columns[layers[task_id]].append(task_id)
    short: list[tuple[str, str]] = []
    chains: dict[tuple[str, str], list[str]] = {}
    for up, down in _edges(dag):
        chain = [up]
        for layer in range(layers[up] + 1, layers[down]):
            waypoint = f"{_WAYPOINT}{up}>{down}#{layer}"
            columns[layer].append(waypoint)
            chain.append(waypoint)
        chain.append(down)
        short.extend(pairwise(chain))
        chains[(up, down)] = chain
    return columns, short, chains


def order_layers(columns: list[list[str]], edges: list[tuple[str, str]]) -> list[list[str]]:
    """Reorder each layer to reduce crossings: barycentric sweeps, best order kept."""
    ups: dict[str, list[str]] = {}
    downs: dict[str, list[str]] = {}
    for up, down in edges:
        downs.setdefault(up, []).append(down)
        ups.setdefault(down, []).append(up)
    order = [list(column) for column in columns]
    best, best_crossings = [list(c) for c in order], count_crossings(order, downs)
    for sweep in range(SWEEPS):
        rightward = sweep % 2 == 0
        indexes = range(1, len(order)) if rightward else range(len(order) - 2, -1, -1)
        for i in indexes:
            fixed = order[i - 1] if rightward else order[i + 1]
            neighbours = ups if rightward else downs
            order[i] = _by_barycenter(order[i], fixed, neighbours)
        crossings = count_crossings(order, downs)
        if crossings < best_crossings:
            best, best_crossings = [list(c) for c in order], crossings
    return best


def _by_barycenter(
    column: list[str], fixed: list[str], neighbours: Mapping[str, list[str]]
) -> list[str]:
    position = {node: i for i, node in enumerate(fixed)}
    keys: dict[str, float] = {}
    for i, node in enumerate(column):
        near = [position[n] for n in neighbours.get(node, ()) if n in position]
        keys[node] = sum(near) / len(near) if near else float(i)
    return sorted(column, key=lambda node: keys[node])  # stable: ties keep their order


def count_crossings(order: list[list[str]], downs: Mapping[str, list[str]]) -> int:
    """Edge crossings between adjacent layers (two edges cross when their ends swap order)."""
    total = 0
    for left, right in pairwise(order):
        position = {node: i for i, node in enumerate(right)}
        pairs = sorted(
            (i, position[down])
            for i, node in enumerate(left)
            for down in downs.get(node, ())
            if down in position
        )
        # sorted by (start, end): edges sharing a start never count, so the crossings are
        # the inversions among the ends, counted with a Fenwick tree in O(E log V)
        total += _inversions([end for _, end in pairs], len(right))
    return total


def _inversions(values: list[int], size: int) -> int:
    tree = [0] * (size + 1)
    inversions = 0
    for seen, value in enumerate(values):
        # how many earlier values are <= value
        i, not_greater = value + 1, 0
        while i > 0:
            not_greater += tree[i]
            i -= i & -i
        inversions += seen - not_greater
        i = value + 1
        while i <= size:
            tree[i] += 1
            i += i & -i
    return inversions


def box_width(label: str) -> float:
    return min(MAX_WIDTH, max(MIN_WIDTH, len(label) * CHAR_WIDTH + 20))


def layout_dag(dag: SerializedDag) -> Layout:
    """Boxes, group frames and edge paths for every task of ``dag``, left to right."""
    layers = assign_layers(dag)
    columns, short, chains = _with_waypoints(dag, layers)
    paths = _with_waypoint_paths(group_paths(dag), chains)
    order = [cluster_column(column, paths) for column in order_layers(columns, short)]
    labels = edge_labels(dag)
    stacks = [_stack(column, paths) for column in order]
    tallest = max((height for _, height in stacks), default=0.0)
    gaps = _gaps(len(order), layers, labels)
    nodes: dict[str, NodeBox] = {}
    centres: dict[str, tuple[float, float]] = {}
    groups: list[GroupBox] = []
    seen_groups: set[str] = set()
    x = MARGIN
    for layer, column in enumerate(order):
        names = {n: short_label(n, paths[n]) for n in column if not n.startswith(_WAYPOINT)}
        width = max((box_width(name) for name in names.values()), default=0.0)
        offsets, height = stacks[layer]
        top = MARGIN + (tallest - height) / 2
        for node, offset in zip(column, offsets, strict=True):
            y = top + offset
            if node.startswith(_WAYPOINT):
                centres[node] = (x + width / 2, y + WAYPOINT_HEIGHT / 2)
            else:
                own = box_width(names[node])
                task = dag.tasks[node]
                role = "setup" if task.is_setup else "teardown" if task.is_teardown else ""
                left = x + (width - own) / 2
                nodes[node] = NodeBox(node, layer, left, y, own, NODE_HEIGHT, names[node], role)
        groups.extend(_group_boxes(layer, column, nodes, paths, seen_groups))
        x += width + gaps[layer]
    edges = [
        _edge_path(up, down, chain, nodes, centres, labels.get((up, down)))
        for (up, down), chain in chains.items()
    ]
    right = x - (gaps[-1] if gaps else 0.0) + MARGIN
    return Layout(nodes, edges, max(right, 0.0), tallest + 2 * MARGIN, groups)


def edge_labels(dag: SerializedDag) -> dict[tuple[str, str], str]:
    """``{(up, down): label}`` from the serialized ``{"up>down": label}``."""
    found: dict[tuple[str, str], str] = {}
    for key, label in dag.edge_labels.items():
        up, sep, down = key.partition(">")
        if sep and up in dag.tasks and down in dag.tasks:
            found[(up, down)] = label
    return found


def _with_waypoint_paths(
    paths: dict[str, GroupPath], chains: Mapping[tuple[str, str], list[str]]
) -> dict[str, GroupPath]:
    """A waypoint belongs to the groups both ends of its edge share: it stays inside."""
    result = dict(paths)
    for (up, down), chain in chains.items():
        shared: list[str] = []
        for a, b in zip(paths[up], paths[down], strict=False):
            if a != b:
                break
            shared.append(a)
        for waypoint in chain[1:-1]:
            result[waypoint] = tuple(shared)
    return result


def _pad(levels: int) -> float:
    return GROUP_PAD * min(levels, MAX_GROUP_DEPTH)


def _stack(column: list[str], paths: Mapping[str, GroupPath]) -> tuple[list[float], float]:
    """Each node's top offset in its layer, leaving room for the frames between groups."""
    offsets: list[float] = []
    y = 0.0
    previous: GroupPath | None = None
    for node in column:
        path = paths.get(node, ())
        if previous is None:
            y += _pad(len(path))
        else:
            common = _common(previous, path)
            y += V_GAP + _pad(len(previous) - common) + _pad(len(path) - common)
        offsets.append(y)
        y += _height(node)
        previous = path
    if previous is not None:
        y += _pad(len(previous))
    return offsets, y


def _common(a: GroupPath, b: GroupPath) -> int:
    count = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        count += 1
    return count


def _gaps(
    count: int, layers: Mapping[str, int], labels: Mapping[tuple[str, str], str]
) -> list[float]:
    """The space after each layer: wide enough for the labels of the edges leaving it."""
    gaps = [H_GAP] * count
    for (up, _down), label in labels.items():
        wanted = len(_cut(label)) * LABEL_CHAR_WIDTH + 2 * _pad(MAX_GROUP_DEPTH) + 24
        gaps[layers[up]] = max(gaps[layers[up]], wanted)
    return gaps


def _group_boxes(
    layer: int,
    column: list[str],
    nodes: Mapping[str, NodeBox],
    paths: Mapping[str, GroupPath],
    seen: set[str],
) -> list[GroupBox]:
    """The frame of each group around its (adjacent) tasks in this layer."""
    members: dict[str, list[NodeBox]] = {}
    for node in column:
        if node in nodes:
            for group in paths[node]:
                members.setdefault(group, []).append(nodes[node])
    boxes = []
    for group, inside in members.items():
        level = paths[inside[0].task_id].index(group)
        deepest = max(len(paths[box.task_id]) for box in inside) - level
        first_depth = len(paths[inside[0].task_id]) - level
        last_depth = len(paths[inside[-1].task_id]) - level
        left = min(box.x for box in inside) - _pad(deepest)
        right = max(box.x + box.width for box in inside) + _pad(deepest)
        top = inside[0].y - _pad(first_depth)
        bottom = inside[-1].y + inside[-1].height + _pad(last_depth)
        boxes.append(
            GroupBox(group, layer, level, left, top, right - left, bottom - top, group not in seen)
        )
        seen.add(group)
    return boxes


def _height(node: str) -> float:
    return WAYPOINT_HEIGHT if node.startswith(_WAYPOINT) else NODE_HEIGHT


def _edge_path(
    up: str,
    down: str,
    chain: list[str],
    nodes: Mapping[str, NodeBox],
    centres: Mapping[str, tuple[float, float]],
    label: str | None = None,
) -> EdgePath:
    start, end = nodes[up], nodes[down]
    points = [(start.x + start.width, start.y + start.height / 2)]
    points.extend(centres[w] for w in chain[1:-1])
    points.append((end.x, end.y + end.height / 2))
    return EdgePath(up, down, tuple(points), label)


def _cut(label: str) -> str:
    return label if len(label) <= MAX_LABEL else label[: MAX_LABEL - 1] + "…"


def _path_data(points: tuple[tuple[float, float], ...]) -> str:
    (x0, y0), rest = points[0], points[1:]
    parts = [f"M{x0:.1f},{y0:.1f}"]
    for x1, y1 in rest:
        bend = (x1 - x0) / 2
        parts.append(f"C{x0 + bend:.1f},{y0:.1f} {x1 - bend:.1f},{y1:.1f} {x1:.1f},{y1:.1f}")
        x0, y0 = x1, y1
    return " ".join(parts)


def _label(task_id: str, width: float) -> str:
    room = int((width - 16) / CHAR_WIDTH)
    return task_id if len(task_id) <= room else task_id[: max(room - 1, 1)] + "…"


def render_svg(
    layout: Layout,
    states: Mapping[str, str],
    link: Callable[[str], str | None] = lambda _task_id: None,
) -> Markup:
    """The SVG of ``layout``; each box has the class ``state-<state>`` and links to ``link``.

    Drawn back to front: group frames, edges, edge labels, task boxes.
    """
    out = [
        f'<svg class="dag-graph" xmlns="http://www.w3.org/2000/svg" '
        f'width="{layout.width:.0f}" height="{layout.height:.0f}" '
        f'viewBox="0 0 {layout.width:.0f} {layout.height:.0f}" role="img">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" '
        'markerHeight="6" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z"/></marker>'
        "</defs>",
    ]
    out.extend(_svg_group(group) for group in layout.groups)
    for edge in layout.edges:
        scope = (layout.nodes[edge.source].role, layout.nodes[edge.target].role)
        kind = "edge setup-teardown" if scope == ("setup", "teardown") else "edge"
        out.append(
            f'<path class="{kind}" data-source="{escape(edge.source)}" '
            f'data-target="{escape(edge.target)}" d="{_path_data(edge.points)}" '
            'marker-end="url(#arrow)"/>'
        )
    out.extend(_svg_edge_label(edge) for edge in layout.edges if edge.label)
    for node in layout.nodes.values():
        box = _svg_node(node, states.get(node.task_id, "none"))
        href = link(node.task_id)
        out.append(f'<a href="{escape(href)}">{box}</a>' if href else box)
    out.append("</svg>")
    return Markup("".join(out))


def _svg_group(group: GroupBox) -> str:
    name = group.group_id.rsplit(".", 1)[-1]
    caption = (
        f'<text x="{group.x + 4:.1f}" y="{group.y + GROUP_PAD - 1:.1f}">{escape(name)}</text>'
        if group.first
        else ""
    )
    return (
        f'<g class="group level-{group.level}" data-group-id="{escape(group.group_id)}" '
        f'data-layer="{group.layer}"><title>group {escape(group.group_id)}</title>'
        f'<rect x="{group.x:.1f}" y="{group.y:.1f}" width="{group.width:.1f}" '
        f'height="{group.height:.1f}" rx="6"/>{caption}</g>'
    )


def _svg_edge_label(edge: EdgePath) -> str:
    """The label on the first stretch of ``edge``, in the gap after its source's layer."""
    (x0, y0), (x1, y1) = edge.points[0], edge.points[1]
    text = _cut(edge.label or "")
    width = len(text) * LABEL_CHAR_WIDTH + 8
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    return (
        f'<g class="edge-label" data-source="{escape(edge.source)}" '
        f'data-target="{escape(edge.target)}"><title>{escape(edge.label or "")}</title>'
        f'<rect x="{cx - width / 2:.1f}" y="{cy - LABEL_HEIGHT / 2:.1f}" width="{width:.1f}" '
        f'height="{LABEL_HEIGHT:.1f}" rx="3"/>'
        f'<text x="{cx:.1f}" y="{cy + 4:.1f}" text-anchor="middle">{escape(text)}</text></g>'
    )


def _svg_node(node: NodeBox, state: str) -> str:
    label = ROLE_MARKS.get(node.role, "") + (node.label or node.task_id)
    kind = f"node state-{escape(state)}" + (f" {node.role}" if node.role else "")
    return (
        f'<g class="{kind}" data-task-id="{escape(node.task_id)}" '
        f'data-layer="{node.layer}">'
        f"<title>{escape(node.task_id)}: {escape(state)}</title>"
        f'<rect x="{node.x:.1f}" y="{node.y:.1f}" width="{node.width:.1f}" '
        f'height="{node.height:.1f}" rx="4"/>'
        f'<text x="{node.x + node.width / 2:.1f}" y="{node.y + node.height / 2 + 4:.1f}" '
        f'text-anchor="middle">{escape(_label(label, node.width))}</text></g>'
    )
