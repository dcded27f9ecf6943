"""``import cluster.sdk`` (what every DAG file does) loads no server-side library."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("sqlalchemy", "celery", "kazoo", "flask", "pika", "alembic")


def loaded_modules(statement: str) -> set[str]:
    code = f"import json, sys\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_sdk_and_operators_import_light() -> None:
    modules = loaded_modules(
        "import cluster.sdk, cluster.operators.bash, cluster.operators.python, "
        "cluster.operators.empty, cluster.sensors.filesystem"
    )
    assert "cluster.sdk" in modules
    heavy = sorted(m for m in modules if m.split(".")[0] in HEAVY)
    assert heavy == []


def test_sdk_imports_no_other_part_of_cluster() -> None:
    modules = loaded_modules("import cluster.sdk")
    allowed = (
        "cluster.sdk",
        "cluster.operators",
        "cluster.sensors",
        "cluster.errors",
        "cluster.states",
    )
    parts = sorted(m for m in modules if m.startswith("cluster.") and not m.startswith(allowed))
    assert parts == []


def test_operator_modules_can_be_imported_first() -> None:
    for module in (
        "cluster.operators.python",
        "cluster.sensors.python",
        "cluster.sdk.baseoperator",
    ):
        assert "cluster.sdk.decorators" in loaded_modules(f"import {module}")
