"""Pure pieces of the pages, without an app: graph layout, log reading, doc_md, trigger form."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from web_harness import chain_dag, etl_dag, write_log

from cluster.config import Settings
from cluster.errors import ParamValidationError, UsageError
from cluster.web.graph import assign_layers, count_crossings, layout_dag, order_layers
from cluster.web.logs import TryRef, fetch_log, read_local
from cluster.web.markdown import render_markdown
from cluster.web.pages.params_form import conf_from_form, fields_for


def test_layers_follow_the_longest_path_so_every_edge_points_right() -> None:
    dag = chain_dag("big", 200)
    layers = assign_layers(dag)
    assert layers["task_000"] == 0
    for task in dag.tasks.values():
        for down in task.downstream_task_ids:
            assert layers[down] > layers[task.task_id]
        if task.upstream_task_ids:
            assert layers[task.task_id] == 1 + max(layers[u] for u in task.upstream_task_ids)


def test_a_200_task_layout_keeps_boxes_apart_and_inside_the_picture() -> None:
    layout = layout_dag(chain_dag("big", 200))
    assert len(layout.nodes) == 200
    by_layer: dict[int, list[tuple[float, float, float]]] = {}
    for box in layout.nodes.values():
        assert box.x >= 0 and box.x + box.width <= layout.width
        assert box.y >= 0 and box.y + box.height <= layout.height
        by_layer.setdefault(box.layer, []).append((box.y, box.y + box.height, box.x))
    for boxes in by_layer.values():
        boxes.sort()
        for (_, end, _), (top, _, _) in itertools.pairwise(boxes):
            assert end <= top
    edges = sum(len(t.downstream_task_ids) for t in chain_dag("big", 200).tasks.values())
    assert len(layout.edges) == edges


def test_barycentric_ordering_removes_avoidable_crossings() -> None:
    columns = [["a", "b"], ["y", "x"]]
    edges = [("a", "x"), ("b", "y")]
    downs = {"a": ["x"], "b": ["y"]}
    assert count_crossings(columns, downs) == 1
    assert count_crossings(order_layers(columns, edges), downs) == 0


def test_the_etl_layout_runs_left_to_right() -> None:
    nodes = layout_dag(etl_dag()).nodes
    assert nodes["extract"].x < nodes["transform"].x < nodes["load"].x


def test_a_local_log_is_read_from_an_offset_without_splitting_characters(tmp_path: Path) -> None:
    path = write_log(tmp_path, "d", "r", "t", 1, "héllo\nworld\n")
    whole = read_local(path, offset=0)
    assert whole.text == "héllo\nworld\n" and whole.next_offset == len("héllo\nworld\n".encode())
    cut = read_local(path, offset=0, limit=2)  # "h" and half of "é"
    assert cut.text == "h" and cut.next_offset == 1
    assert read_local(path, offset=cut.next_offset, limit=2).text == "é"
    assert read_local(path, offset=10_000).text == ""


def test_fetch_log_knows_local_and_missing_logs(settings: Settings) -> None:
    """Remote logs, fetched from a real log server, are in ``test_web_remote_logs``."""
    base = settings.logging.base_log_folder
    write_log(base, "d", "r", "t", 1, "ran here\n")
    here = settings.core.hostname
    assert fetch_log(settings, TryRef("d", "r", "t", 1, hostname="elsewhere")).text == "ran here\n"
    missing = fetch_log(settings, TryRef("d", "r", "t", 2, hostname=here))
    assert missing.source == "missing" and "No log for try 2" in (missing.message or "")
    with pytest.raises(UsageError):
        fetch_log(settings, TryRef("..", "r", "t", 1))


def test_doc_md_is_escaped_and_only_safe_links_survive() -> None:
    html = str(
        render_markdown(
            "## Title\n- one `x<y`\n- [docs](https://example.com)\n\n"
            "[bad](javascript:alert(1)) <b>raw</b>\n```\n<code>\n```"
        )
    )
    assert "<h4>Title</h4>" in html and "<li>one <code>x&lt;y</code></li>" in html
    assert '<a href="https://example.com" rel="nofollow noopener">docs</a>' in html
    assert "javascript:" in html and 'href="javascript' not in html
    assert "&lt;b&gt;raw&lt;/b&gt;" in html and "<pre><code>&lt;code&gt;</code></pre>" in html


def test_the_trigger_form_reads_typed_params() -> None:
    params = {
        "rows": {"type": "integer", "default": 10},
        "ratio": {"type": "number", "default": 0.5},
        "dry": {"type": "boolean", "default": True},
        "mode": {"enum": ["fast", "slow"], "default": "fast"},
        "tables": {"type": "array", "default": ["a"]},
        "label": {"type": "string"},
    }
    shown = {f.name: f for f in fields_for(params)}
    assert shown["rows"].value == "10" and shown["dry"].checked and shown["label"].required
    assert shown["mode"].options == [('"fast"', "fast"), ('"slow"', "slow")]
    form = {
        "param.rows": "3",
        "param.ratio": "2.5",
        "param.mode": '"slow"',
        "param.tables": '["a", "b"]',
        "param.label": "x",
        "conf": '{"extra": 1}',
    }
    assert conf_from_form(params, form) == {
        "rows": 3,
        "ratio": 2.5,
        "dry": False,
        "mode": "slow",
        "tables": ["a", "b"],
        "label": "x",
        "extra": 1,
    }
    assert conf_from_form(params, {"param.rows": "", "param.dry": "true"}) == {"dry": True}
    with pytest.raises(ParamValidationError, match="not valid JSON"):
        conf_from_form(params, {"param.tables": "[oops"})
    with pytest.raises(ParamValidationError, match="JSON object"):
        conf_from_form(params, {"conf": "[1]"})
