"""The foundation's promise on an empty home: migrate, reserialize, list DAGs and import errors."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.example_expectations import EXPECTED
from tests.integration.scheduler_harness import CLI, REPO

HEADER = (
    "from datetime import datetime\nfrom cluster.sdk import DAG\n"
    "from cluster.operators.empty import EmptyOperator\n"
)
BROKEN = {
    "syntax_error.py": ("# dag\ndef broken(:\n    pass\n", "SyntaxError"),
    "raises.py": ("# dag\nraise ValueError('no luck')\n", "ValueError: no luck"),
    "endless.py": ("# dag\nwhile True:\n    pass\n", "did not finish within 2 s"),
    "cycle.py": (
        HEADER + "with DAG('cyc', schedule=None, start_date=datetime(2024, 1, 1)):\n"
        "    a = EmptyOperator(task_id='a')\n    b = EmptyOperator(task_id='b')\n    a >> b >> a\n",
        "cycle",
    ),
    "duplicate.py": (
        HEADER + "with DAG('dup', schedule=None, start_date=datetime(2024, 1, 1)):\n"
        "    EmptyOperator(task_id='same')\n    EmptyOperator(task_id='same')\n",
        "same",
    ),
}


def _run(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [*CLI, *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_empty_home_to_listed_dags_and_import_errors(tmp_path: Path) -> None:
    home = tmp_path / "empty-home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADEWIND")}
    env.update(
        {
            "TRADEWIND_HOME": str(home),
            "PYTHONPATH": str(REPO),
            "TRADEWIND__CORE__DAG_FILE_PROCESSOR_TIMEOUT": "2",
        }
    )

    assert "Migrated" in _run(env, "db", "migrate")
    assert "nothing to do" in _run(env, "db", "migrate")

    dags = home / "dags"
    dags.mkdir()
    for name, (source, _) in BROKEN.items():
        (dags / name).write_text(source)
    _run(env, "dags", "reserialize")

    listed = json.loads(_run(env, "dags", "list", "-o", "json"))
    assert {d["dag_id"] for d in listed} == set(EXPECTED)
    for dag in listed:
        assert dag["task_count"] == len(EXPECTED[dag["dag_id"]])
        assert "schedule" in dag
    tutorial = next(d for d in listed if d["dag_id"] == "tutorial")
    assert tutorial["schedule"] is not None

    errors = {
        Path(e["filepath"]).name: e["error"]
        for e in json.loads(_run(env, "dags", "list-import-errors", "-o", "json"))
    }
    assert set(errors) == set(BROKEN)
    for name, (_, message) in BROKEN.items():
        assert message in errors[name], (name, errors[name])
