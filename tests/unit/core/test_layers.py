"""The one-way layers of ARCHITECTURE.md, checked over every module of the package."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[3] / "cluster"

#: part → the parts of cluster it may import (besides itself)
ALLOWED: dict[str, set[str]] = {
    "sdk": {"errors", "states"},
    "operators": {"errors", "states", "sdk", "triggers"},
    "sensors": {"errors", "states", "sdk", "operators", "triggers"},
    # deferral's triggers run in the triggerer and in dags test: the SDK (where
    # BaseTrigger lives, and the runtime they read states through), nothing above
    "triggers": {"errors", "states", "sdk"},
    "metastore": {"config", "errors", "states"},
    "messages": set(),
    "policy": {"dagfiles", "errors", "sdk", "states"},
    "logserver": {"errors"},
    "metrics": {"config", "errors", "states"},
    "devcluster": {"deploy", "errors"},
    "actions": {"dagfiles", "errors", "metastore", "policy", "sdk", "states"},
    "airflow_migration": {"errors", "metastore", "states"},
    "errors": set(),
    "states": {"errors"},
    "config": {"errors"},
    "triggerer": {"config", "errors", "metastore", "metrics", "sdk", "states", "triggers"},
}
#: part → parts it must never import
FORBIDDEN: dict[str, set[str]] = {
    "web": {"scheduler", "executors", "execution", "cli"},
    "scheduler": {"web", "cli", "execution"},
    "execution": {"web", "cli", "scheduler"},
    "executors": {"web", "cli", "scheduler"},
    "dagfiles": {"web", "cli", "scheduler", "executors"},
    "deploy": {"cli"},
    # Flower reuses the webserver's credential cache and login throttle, nothing else
    "flower": {"cli", "scheduler", "execution", "dagfiles"},
}


def _part(module: str) -> str:
    return module.split(".")[1] if module.count(".") else module


def _imports() -> list[tuple[str, str, str]]:
    """``(file, importing part, imported part)`` for every ``cluster.*`` import."""
    found = []
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE.parent).with_suffix("")
        part = relative.parts[1].removesuffix(".py") if len(relative.parts) > 1 else ""
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                if name.startswith("cluster."):
                    found.append((str(relative), part, _part(name)))
    return found


IMPORTS = _imports()


def test_the_package_has_modules_to_check() -> None:
    assert len(IMPORTS) > 50


@pytest.mark.parametrize("part", sorted(ALLOWED))
def test_lower_layers_import_only_what_they_may(part: str) -> None:
    bad = [(f, t) for f, p, t in IMPORTS if p == part and t != part and t not in ALLOWED[part]]
    assert bad == [], f"{part} may import only {sorted(ALLOWED[part])}"


@pytest.mark.parametrize("part", sorted(FORBIDDEN))
def test_forbidden_imports(part: str) -> None:
    bad = [(f, t) for f, p, t in IMPORTS if p == part and t in FORBIDDEN[part]]
    assert bad == []


#: part → the only parts that may import it
IMPORTED_ONLY_BY: dict[str, set[str]] = {
    # a process of its own: the CLI wires it (and standalone runs one in a thread)
    "triggerer": {"cli"},
}


@pytest.mark.parametrize("part", sorted(IMPORTED_ONLY_BY))
def test_some_parts_are_imported_only_by_their_wiring(part: str) -> None:
    allowed = {part, *IMPORTED_ONLY_BY[part]}
    bad = [(f, p) for f, p, t in IMPORTS if t == part and p not in allowed]
    assert bad == [], f"only {sorted(IMPORTED_ONLY_BY[part])} may import {part}"


def test_no_imports_inside_functions_to_dodge_cycles() -> None:
    inner = []
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                for child in ast.walk(node):
                    if isinstance(child, ast.Import | ast.ImportFrom):
                        inner.append(f"{path.relative_to(PACKAGE)}:{child.lineno}")
    assert inner == []


def _cycle(graph: dict[str, set[str]]) -> list[str]:
    """One cycle of ``graph`` as a path that ends where it starts, or ``[]``."""
    done: set[str] = set()

    def visit(part: str, path: list[str]) -> list[str]:
        if part in path:
            return [*path[path.index(part) :], part]
        if part in done:
            return []
        for target in sorted(graph.get(part, ())):
            found = visit(target, [*path, part])
            if found:
                return found
        done.add(part)
        return []

    for part in sorted(graph):
        found = visit(part, [])
        if found:
            return found
    return []


def test_no_part_imports_another_that_imports_it_back() -> None:
    graph: dict[str, set[str]] = {}
    for _, part, target in IMPORTS:
        if part and target != part:
            graph.setdefault(part, set()).add(target)
    assert _cycle(graph) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) == []


#: modules that speak one database's dialect: only the metastore may import them
DATABASE_DRIVERS = ("pymysql", "psycopg", "sqlite3", "sqlalchemy.dialects")
_SUBMODULES = tuple(f"{name}." for name in DATABASE_DRIVERS)


def test_only_the_metastore_speaks_a_database_dialect() -> None:
    """SQLite, MySQL/MariaDB and PostgreSQL differences live in cluster/metastore alone."""
    found = []
    for path in PACKAGE.rglob("*.py"):
        if path.relative_to(PACKAGE).parts[0] == "metastore":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            bad = [n for n in names if n in DATABASE_DRIVERS or n.startswith(_SUBMODULES)]
            found += [f"{path.relative_to(PACKAGE)}: {n}" for n in bad]
    assert found == []
