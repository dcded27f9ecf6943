"""What an Airflow DAG file uses, and whether Tradewind supports it (``tradewind compat check``).

A team reads this report before switching: it is computed from each file's syntax tree,
never by running the file, so a folder of DAGs written for Airflow can be checked with
nothing of theirs installed. Every ``airflow`` module a file imports is resolved by the
same rules as ``core.airflow_compat``'s import hook (:mod:`cluster.sdk.airflow_compat`),
every imported name is looked up in the Tradewind module it resolves to, and a few Airflow
features that show only in calls (``.expand(``, ``deferrable=True``, ``.defer(``...) are
reported with whether Tradewind has them today: the answers come from the code, so the
report improves as features land.
"""

from __future__ import annotations

import ast
import importlib
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cluster.errors import FeatureNotSupported
from cluster.sdk import NOT_YET, BaseOperator
from cluster.sdk.airflow_compat import SDK, resolve


@dataclass(frozen=True)
class Finding:
    """One Airflow module, name or feature a file uses, at its first line there."""

    file: str
    line: int
    kind: str  # module | name | feature
    airflow: str
    supported: bool
    tradewind: str  # what it resolves to, or why not

    def as_row(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Feature:
    """An Airflow feature recognised by a call or keyword, and whether Tradewind has it."""

    name: str
    supported: Callable[[], bool]


def _has_mapping() -> bool:
    return callable(getattr(BaseOperator, "partial", None))


def _has_deferral() -> bool:
    return "TaskDeferred" not in NOT_YET


MAPPING = Feature("dynamic task mapping", _has_mapping)
DEFERRAL = Feature("deferrable operators", _has_deferral)
#: a method called on anything → the feature it belongs to
METHODS = {
    "expand": MAPPING,
    "expand_kwargs": MAPPING,
    "partial": MAPPING,
    "defer": DEFERRAL,
}
#: a keyword argument set to True → the feature it belongs to
KEYWORDS = {"deferrable": DEFERRAL}


def python_files(folder: Path) -> list[Path]:
    """Every ``.py`` file under ``folder``, sorted, skipping hidden folders and caches."""
    return sorted(
        path
        for path in folder.rglob("*.py")
        if not any(p.startswith(".") or p == "__pycache__" for p in path.relative_to(folder).parts)
    )


def check_paths(paths: list[Path], *, root: Path | None = None) -> list[Finding]:
    """Every finding of every file, in file and line order."""
    findings: list[Finding] = []
    for path in paths:
        name = str(path.relative_to(root)) if root is not None else path.name
        findings.extend(check_source(path.read_text(errors="replace"), name))
    return findings


def check_source(source: str, file: str) -> list[Finding]:
    """What one file's source uses; a file that does not parse is one unsupported finding."""
    try:
        tree = ast.parse(source, filename=file)
    except SyntaxError as exc:
        return [Finding(file, exc.lineno or 0, "syntax", "", False, f"SyntaxError: {exc.msg}")]
    seen: dict[tuple[str, str], Finding] = {}
    for finding in [*_imports(tree, file), *_features(tree, file)]:
        seen.setdefault((finding.kind, finding.airflow), finding)
    return sorted(seen.values(), key=lambda f: (f.line, f.kind, f.airflow))


def _imports(tree: ast.AST, file: str) -> Iterator[Finding]:
    typing_only = _type_checking_nodes(tree)
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _is_airflow(alias.name):
                    yield _module(file, node.lineno, alias.name)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if not _is_airflow(node.module):
                continue
            module = _module(file, node.lineno, node.module)
            yield module
            if module.supported:
                for alias in node.names:
                    yield _name(file, node.lineno, node.module, alias.name)


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    """Nodes under ``if TYPE_CHECKING:``: imports for type checkers, never run."""
    nodes: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for statement in node.body:
                nodes.update(id(child) for child in ast.walk(statement))
    return nodes


def _is_type_checking(test: ast.expr) -> bool:
    if isinstance(test, ast.Attribute):
        return test.attr == "TYPE_CHECKING"
    return isinstance(test, ast.Name) and test.id == "TYPE_CHECKING"


def _is_airflow(module: str) -> bool:
    return module == "airflow" or module.startswith("airflow.")


def _module(file: str, line: int, name: str) -> Finding:
    resolution = resolve(_first_missing(name))
    if resolution.target is None:
        return Finding(file, line, "module", name, False, resolution.reason)
    return Finding(file, line, "module", name, True, resolution.target)


def _first_missing(name: str) -> str:
    """The outermost part of ``name`` that does not resolve (what the import would name)."""
    parts = name.split(".")
    for end in range(1, len(parts) + 1):
        prefix = ".".join(parts[:end])
        if resolve(prefix).target is None:
            return prefix
    return name


def _name(file: str, line: int, module: str, name: str) -> Finding:
    """Whether ``from module import name`` finds ``name`` in Tradewind's module."""
    qualified = f"{module}.{name}"
    target = resolve(module).target
    assert target is not None
    if name == "*":
        return Finding(file, line, "name", qualified, True, target)
    if resolve(qualified).target is not None and target != SDK:
        return Finding(file, line, "name", qualified, True, resolve(qualified).target or "")
    try:
        found = hasattr(importlib.import_module(target), name)
    except FeatureNotSupported as exc:
        return Finding(file, line, "name", qualified, False, str(exc))
    if not found and resolve(qualified).target is not None:  # ``from airflow import models``
        return Finding(file, line, "name", qualified, True, SDK)
    if not found:
        return Finding(file, line, "name", qualified, False, f"{target} has no {name}")
    return Finding(file, line, "name", qualified, True, f"{target}.{name}")


def _features(tree: ast.AST, file: str) -> Iterator[Finding]:
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr in METHODS:
            yield _feature(file, node.lineno, METHODS[func.attr], f".{func.attr}()")
        for keyword in node.keywords:
            feature = KEYWORDS.get(keyword.arg or "")
            value = keyword.value
            if feature is not None and not (isinstance(value, ast.Constant) and not value.value):
                yield _feature(file, node.lineno, feature, f"{keyword.arg}=")


def _feature(file: str, line: int, feature: Feature, usage: str) -> Finding:
    supported = feature.supported()
    verdict = "supported" if supported else "not supported yet"
    return Finding(file, line, "feature", f"{feature.name} ({usage})", supported, verdict)
