"""Task groups and edge labels in the graph view, from DAGs written with the SDK.

The DAGs go through the real serializer (``task_group_id``, ``task_groups`` and
``edge_labels`` of the serialized form), so a serializer that dropped them fails here.
"""

from __future__ import annotations

import itertools
import re

from flask.testing import FlaskClient
from web_harness import Browser

from cluster.dagfiles.serialize import serialize_dag
from cluster.dagfiles.serialized import SerializedDag
from cluster.metastore.engine import SessionFactory
from cluster.metastore.models import Dag, SerializedDagRow
from cluster.operators.empty import EmptyOperator
from cluster.sdk import DAG, Label, TaskGroup
from cluster.web.graph import GroupBox, Layout, NodeBox, layout_dag, render_svg
from cluster.web.taskgroups import cluster_column, group_paths


def grouped_dag() -> SerializedDag:
    """``start >> section_1 >> section_2 >> end``; ``section_2`` nests ``inner``; labels."""
    with DAG(dag_id="grouped", schedule=None) as dag:
        start = EmptyOperator(task_id="start")
        with TaskGroup("section_1") as section_1:
            one = EmptyOperator(task_id="task_1")
            one >> [EmptyOperator(task_id="task_2"), EmptyOperator(task_id="task_3")]
        with TaskGroup("section_2") as section_2:
            EmptyOperator(task_id="task_1")
            with TaskGroup("inner"):
                [EmptyOperator(task_id="a"), EmptyOperator(task_id="b")] >> EmptyOperator(
                    task_id="c"
                )
        end = EmptyOperator(task_id="end")
        start >> Label("when ready") >> section_1 >> section_2 >> end
        start >> Label("a very long label that goes on and on and on and on") >> end
    return serialize_dag(dag)


def grouped_big_dag(size: int = 200, per_group: int = 10) -> SerializedDag:
    """``size`` tasks in groups of ``per_group``, each group a fan-out and fan-in, chained."""
    with DAG(dag_id="big_grouped", schedule=None) as dag:
        previous = None
        for g in range(size // per_group):
            with TaskGroup(f"group_{g:02d}") as group:
                head = EmptyOperator(task_id="head")
                tail = EmptyOperator(task_id="tail")
                for i in range(per_group - 2):
                    head >> EmptyOperator(task_id=f"step_{i}") >> tail
            if previous is not None:
                previous >> Label(f"after {g - 1}") >> group
            previous = group
    return serialize_dag(dag)


def inside(box: NodeBox, frame: GroupBox) -> bool:
    return (
        frame.x <= box.x
        and box.x + box.width <= frame.x + frame.width
        and frame.y <= box.y
        and box.y + box.height <= frame.y + frame.height
    )


def overlaps(box: NodeBox, frame: GroupBox) -> bool:
    return not (
        box.x + box.width <= frame.x
        or frame.x + frame.width <= box.x
        or box.y + box.height <= frame.y
        or frame.y + frame.height <= box.y
    )


def assert_frames_hold_exactly_their_tasks(dag: SerializedDag, layout: Layout) -> None:
    paths = group_paths(dag)
    for frame in layout.groups:
        for box in layout.nodes.values():
            member = frame.group_id in paths[box.task_id]
            if member and box.layer == frame.layer:
                assert inside(box, frame), (box.task_id, frame.group_id)
            elif not member:
                assert not overlaps(box, frame), (box.task_id, frame.group_id)


def test_the_serialized_form_carries_groups_and_labels() -> None:
    dag = grouped_dag()
    assert dag.tasks["section_2.inner.a"].task_group_id == "section_2.inner"
    assert dag.task_groups["section_2.inner"]["parent"] == "section_2"
    assert dag.edge_labels["start>section_1.task_1"] == "when ready"
    again = SerializedDag.from_json(dag.to_json())
    assert group_paths(again)["section_2.inner.c"] == ("section_2", "section_2.inner")


def test_a_group_keeps_its_tasks_together_in_a_layer() -> None:
    paths = {"a": ("g",), "b": (), "c": ("g",), "d": ("g", "g.i"), "e": ("g",)}
    assert cluster_column(["a", "b", "d", "c", "e"], paths) == ["a", "d", "c", "e", "b"]
    assert cluster_column(["b", "x"], paths) == ["b", "x"]


def test_groups_are_framed_and_labelled_and_nested_frames_nest() -> None:
    dag = grouped_dag()
    layout = layout_dag(dag)
    assert_frames_hold_exactly_their_tasks(dag, layout)
    named = {(f.group_id, f.level) for f in layout.groups if f.first}
    assert named == {("section_1", 0), ("section_2", 0), ("section_2.inner", 1)}
    for inner in (f for f in layout.groups if f.group_id == "section_2.inner"):
        outer = next(
            f for f in layout.groups if f.group_id == "section_2" and f.layer == inner.layer
        )
        assert outer.x < inner.x and inner.x + inner.width < outer.x + outer.width
        assert outer.y < inner.y and inner.y + inner.height < outer.y + outer.height
    assert layout.nodes["section_2.inner.a"].label == "a"


def test_edge_labels_are_drawn_in_a_gap_wide_enough_for_them() -> None:
    dag = grouped_dag()
    layout = layout_dag(dag)
    labelled = {(e.source, e.target): e.label for e in layout.edges if e.label}
    assert labelled[("start", "section_1.task_1")] == "when ready"
    svg = str(render_svg(layout, {"start": "success"}))
    assert svg.count('class="edge-label"') == len(labelled) == 2
    assert "<title>a very long label that goes on and on and on and on</title>" in svg
    start, first = layout.nodes["start"], layout.nodes["section_1.task_1"]
    for width in re.findall(r'class="edge-label".*?<rect x="[^"]+" y="[^"]+" width="([^"]+)"', svg):
        assert float(width) < first.x - (start.x + start.width)
    assert 'class="group level-1" data-group-id="section_2.inner"' in svg
    assert ">inner</text>" in svg


def test_a_200_task_dag_in_groups_stays_readable() -> None:
    dag = grouped_big_dag()
    layout = layout_dag(dag)
    assert len(layout.nodes) == 200 and len(layout.groups) >= 20
    assert_frames_hold_exactly_their_tasks(dag, layout)
    by_layer: dict[int, list[NodeBox]] = {}
    for box in layout.nodes.values():
        by_layer.setdefault(box.layer, []).append(box)
    for boxes in by_layer.values():
        boxes.sort(key=lambda b: b.y)
        for a, b in itertools.pairwise(boxes):
            assert a.y + a.height < b.y, (a.task_id, b.task_id)
    # a 20-group chain is wide but no taller than its widest layer needs
    assert layout.height < 8 * 60 + 100
    svg = str(render_svg(layout, {}))
    assert svg.count('class="edge-label"') == 19


def test_the_graph_page_shows_groups_and_labels(
    client: FlaskClient, tokens: dict[str, str], seeded: None, factory: SessionFactory
) -> None:
    dag = grouped_dag()
    with factory.begin() as session:
        session.add(Dag(dag_id="grouped", fileloc="/dags/grouped.py"))
        session.add(
            SerializedDagRow(
                dag_id="grouped", fileloc="/dags/grouped.py", data=dag.to_json(), fingerprint="f"
            )
        )
    html = Browser(client, tokens["Viewer"]).page("/dags/grouped/graph")
    assert 'data-group-id="section_1"' in html and ">when ready</text>" in html
