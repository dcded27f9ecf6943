"""The import swap an Airflow user makes, applied to Airflow's own DAG files, and the
structure the parity tests compare with what Airflow 2.10.5 itself reported.

Shared by every parity test (``tests/unit/sdk/test_airflow_examples.py`` and the example
run tests) so all apply exactly the rules of ARCHITECTURE.md ("Authoring compatibility") and nothing
else: a file that only loads after some other edit does not count as compatible.
"""

from __future__ import annotations

import pathlib
import re
from collections.abc import Callable

from cluster.dagfiles.serialized import SerializedDag
from cluster.sdk.cron import CRON_PRESETS

_IMPORT_RULES = [
    # Airflow ships its examples' helpers (libs/, plugins/, subdags/) inside its package;
    # to a user they are the user's own modules, found beside the DAG files
    (re.compile(r"^(\s*)from airflow\.example_dags\.([\w.]+) import", re.M), r"\1from \2 import"),
    (re.compile(r"^(\s*)from airflow\.(?:providers\.standard\.)?operators\.(\w+) import", re.M),
     r"\1from cluster.operators.\2 import"),
    (re.compile(r"^(\s*)from airflow\.(?:providers\.standard\.)?sensors\.(\w+) import", re.M),
     r"\1from cluster.sensors.\2 import"),
    (re.compile(r"^(\s*)from airflow\.(?:providers\.standard\.)?triggers\.(\w+) import", re.M),
     r"\1from cluster.triggers.\2 import"),
    # every other Airflow module is one flat authoring namespace
    (re.compile(r"^(\s*)from airflow(?:\.[\w.]+)? import", re.M), r"\1from cluster.sdk import"),
    (re.compile(r"^(\s*)import airflow(?:\.[\w.]+)? as (\w+)", re.M), r"\1import cluster.sdk as \2"),
]  # fmt: skip


def rewrite_imports(source: str) -> str:
    """Apply ARCHITECTURE.md's import table to an Airflow DAG file, nothing else."""
    for pattern, replacement in _IMPORT_RULES:
        source = pattern.sub(replacement, source)
    return source


def localize_example_helpers(source: str) -> str:
    """Only the first rule: what an Airflow user's own copy of an example file reads like,
    every other ``airflow`` import unchanged (for ``core.airflow_compat``'s import hook)."""
    pattern, replacement = _IMPORT_RULES[0]
    return pattern.sub(replacement, source)


def rewrite_tree(
    source: pathlib.Path,
    target: pathlib.Path,
    transform: Callable[[str], str] = rewrite_imports,
) -> None:
    """Copy a DAG folder with every ``.py`` file's imports swapped, other files as they are."""
    for path in source.rglob("*"):
        if "__pycache__" in path.parts or path.is_dir():
            continue
        out = target / path.relative_to(source)
        out.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".py":
            out.write_text(transform(path.read_text()))
        else:
            out.write_bytes(path.read_bytes())


def describe(dag: SerializedDag) -> dict[str, object]:
    """Tradewind's DAG in the shape ``generate.py`` writes Airflow's."""
    tasks = dag.tasks.values()
    summary = dag.schedule
    return {
        "task_ids": sorted(dag.tasks),
        "edges": sorted([t.task_id, d] for t in tasks for d in t.downstream_task_ids),
        "trigger_rules": {t.task_id: t.trigger_rule for t in tasks},
        "edge_labels": dict(sorted(dag.edge_labels.items())),
        "task_groups": sorted(dag.task_groups),
        # Airflow prints presets expanded and no schedule as the string "None"
        "schedule": "None" if summary is None else CRON_PRESETS.get(summary, summary),
    }
