"""Size budgets of STYLE.md: a long module or function has found a second job."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[3] / "cluster"
MODULE_LINES = 500
FUNCTION_LINES = 80
#: Airflow-shaped constructors: one keyword argument per Airflow parameter, kept as Airflow has them
AIRFLOW_SHAPED = {("sdk/baseoperator.py", "__init__"), ("sdk/dag.py", "__init__")}


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_no_module_is_over_its_budget() -> None:
    long = {
        str(path.relative_to(PACKAGE)): lines
        for path in _modules()
        if (lines := len(path.read_text().splitlines())) > MODULE_LINES
    }
    assert long == {}


def test_no_function_is_over_its_budget() -> None:
    long = {}
    for path in _modules():
        name = str(path.relative_to(PACKAGE))
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > FUNCTION_LINES and (name, node.name) not in AIRFLOW_SHAPED:
                    long[f"{name}:{node.name}"] = lines
    assert long == {}
