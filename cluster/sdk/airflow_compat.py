"""``import airflow…`` in unchanged DAG files and plugins, resolved to Tradewind's modules.

The rules are ARCHITECTURE.md's "Authoring compatibility" table: Airflow's operator,
sensor and trigger modules (core or the standard provider) are Tradewind's modules of the
same name; every other ``airflow…`` module is the flat authoring namespace
:mod:`cluster.sdk`. :func:`install` puts :class:`AirflowFinder` on ``sys.meta_path``; the
processes that import user code call it (``core.airflow_compat``), never ``import
cluster.sdk`` itself, which must stay free of side effects.

Why the ``cluster.sdk`` aliases are small proxy modules and not ``cluster.sdk`` itself:
``import airflow.models.dag`` makes Python set the attribute ``dag`` of the module named
``airflow.models`` to the submodule; were that module ``cluster.sdk``, its ``dag``
decorator would be replaced by a module. A proxy answers every attribute with
``cluster.sdk``'s own object, so ``airflow.models.DAG is cluster.sdk.DAG`` and
isinstance checks and the DAG context work as with the swapped imports.

What can go wrong: a module Tradewind lacks (a provider other than the standard one, an
operator module it has no counterpart for) is one ``ModuleNotFoundError`` naming the
Airflow module; a real Apache Airflow installed in the same environment is never
shadowed: each ``import airflow`` then fails saying so.
"""

from __future__ import annotations

import functools
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import logging
import sys
import types
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

SDK = "cluster.sdk"
#: Airflow's package name for the modules of one kind → Tradewind's package
_KINDS = {
    "operators": "cluster.operators",
    "sensors": "cluster.sensors",
    "triggers": "cluster.triggers",
}

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Resolution:
    """Where one Airflow module name leads.

    :param target: the Tradewind module to use, or ``None`` when there is none
    :param proxy: the target is ``cluster.sdk`` seen through an alias module
    :param reason: why there is no target (for the import error and ``compat check``)
    """

    target: str | None
    proxy: bool = False
    reason: str = ""
    package: bool = True


def resolve(name: str) -> Resolution:
    """The Tradewind module for the Airflow module ``name`` (``airflow`` or below)."""
    parts = name.split(".")
    if parts[:2] == ["airflow", "providers"] and len(parts) > 2 and parts[2] != "standard":
        return Resolution(
            None, reason=f"Tradewind does not implement Airflow's {parts[2]} provider"
        )
    standard = parts[:3] == ["airflow", "providers", "standard"]
    kind = _resolve_kind(parts[3:] if standard else parts[1:])
    if kind is not None:
        return kind
    modules = airflow_modules()
    if name not in modules:
        return Resolution(None, reason="not a module of Airflow 2.10 or 3 that Tradewind knows")
    return Resolution(SDK, proxy=True, package=modules[name])


@functools.cache
def airflow_modules() -> dict[str, bool]:
    """Airflow's modules that are ``cluster.sdk`` (``airflow_modules.txt``), each with
    whether it is a package. Only Airflow's real module names resolve, so ``from
    airflow.configuration import conf`` fails on ``conf`` instead of making it a module."""
    text = (Path(__file__).parent / "airflow_modules.txt").read_text()
    names = {n for n in text.splitlines() if n and not n.startswith("#")}
    parents = {n.rsplit(".", 1)[0] for n in names if "." in n}
    return {n: n in parents for n in names}


def _resolve_kind(rest: Sequence[str]) -> Resolution | None:
    """``operators.X`` / ``sensors.X`` / ``triggers.X`` → Tradewind's module of that name."""
    if not rest or rest[0] not in _KINDS:
        return None
    package = _KINDS[rest[0]]
    target = ".".join([package, *rest[1:]])
    try:
        spec = importlib.util.find_spec(target)
    except ImportError:  # a parent package that does not exist
        spec = None
    if spec is None:
        return Resolution(None, reason=f"Tradewind has no module {target}")
    return Resolution(target, package=spec.submodule_search_locations is not None)


class _SdkAlias(types.ModuleType):
    """An Airflow module name whose every attribute is ``cluster.sdk``'s."""

    def __getattr__(self, attr: str) -> object:
        if attr.startswith("__"):
            raise AttributeError(attr)
        value = getattr(sys.modules[SDK], attr)
        if isinstance(value, types.ModuleType):
            # ``from airflow import timetables`` means Airflow's module: import the alias
            raise AttributeError(attr)
        return value

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(getattr(sys.modules[SDK], "__all__", ())))


class _AliasLoader(importlib.abc.Loader):
    """Gives the import system an existing Tradewind module, or a proxy of ``cluster.sdk``."""

    def __init__(self, resolution: Resolution) -> None:
        self._resolution = resolution
        self._own_spec: importlib.machinery.ModuleSpec | None = None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        target = self._resolution.target
        assert target is not None
        module = importlib.import_module(target)
        if self._resolution.proxy:
            alias = _SdkAlias(spec.name, module.__doc__)
            if self._resolution.package:  # ``airflow.models.dag`` below ``airflow.models``
                alias.__path__ = []
            return alias
        self._own_spec = module.__spec__
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        # the import system stamped the Airflow name's spec on Tradewind's module: keep its own
        if self._own_spec is not None:
            module.__spec__ = self._own_spec


class AirflowFinder(importlib.abc.MetaPathFinder):
    """Finds ``airflow`` and every module below it (see the module's docstring).

    :param real_airflow: where a real Apache Airflow package was found, if any: then no
        name is resolved and every ``airflow`` import fails saying so.
    """

    def __init__(self, real_airflow: str | None = None) -> None:
        self.real_airflow = real_airflow

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: types.ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "airflow" and not fullname.startswith("airflow."):
            return None
        if self.real_airflow is not None:
            raise ImportError(
                f"{fullname}: a real Apache Airflow is installed in Tradewind's environment "
                f"({self.real_airflow}); Tradewind does not shadow it. Uninstall apache-airflow "
                "there, or set core.airflow_compat = false to import it as it is",
                name=fullname,
            )
        resolution = resolve(fullname)
        if resolution.target is None:
            raise ModuleNotFoundError(
                f"No module named {fullname!r}: {resolution.reason}", name=fullname
            )
        return importlib.util.spec_from_loader(
            fullname, _AliasLoader(resolution), is_package=resolution.package
        )


def real_airflow_location() -> str | None:
    """Where the path finders would find a package named ``airflow``, if anywhere."""
    spec = importlib.machinery.PathFinder.find_spec("airflow")
    if spec is None:
        return None
    return spec.origin or ", ".join(spec.submodule_search_locations or ()) or "a namespace"


def installed() -> AirflowFinder | None:
    """The finder on ``sys.meta_path``, if one was installed."""
    return next((f for f in sys.meta_path if isinstance(f, AirflowFinder)), None)


def install() -> AirflowFinder:
    """Put the finder first on ``sys.meta_path`` (idempotent); for processes running user code."""
    finder = installed()
    if finder is None:
        finder = AirflowFinder(real_airflow_location())
        if finder.real_airflow is not None:
            log.warning(
                "A real Apache Airflow is installed at %s: DAG files' airflow imports fail "
                "instead of resolving to Tradewind's modules (core.airflow_compat)",
                finder.real_airflow,
            )
        sys.meta_path.insert(0, finder)
    return finder


def uninstall() -> None:
    """Remove the finder and every ``airflow`` module it resolved (tests, and
    ``core.airflow_compat = false`` in a process that had it on)."""
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, AirflowFinder)]
    for name in [n for n in sys.modules if n == "airflow" or n.startswith("airflow.")]:
        del sys.modules[name]
