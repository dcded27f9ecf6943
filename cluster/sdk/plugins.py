"""Plugins: ``AirflowPlugin`` subclasses in modules of the plugins folder.

As in Airflow, every ``.py`` file of ``core.plugins_folder`` (default
``$TRADEWIND_HOME/plugins``) is imported as a module named after the file, with the
folder (and the DAG folder) on ``sys.path``, so DAG files import plugin modules by
those names (``from workday import AfterWorkdayTimetable``). Each ``AirflowPlugin``
subclass found there registers what it carries; Tradewind uses two of Airflow's
plugin kinds:

``timetables``
    Timetable classes a DAG may schedule with. The serialized DAG names the class by
    its import path, and the scheduler and webservers, which never import DAG files,
    find it here (or import its module by that path).
``macros``
    Functions available in templates as ``macros.<plugin name>.<function>``.

The other attributes (views, listeners, hooks, ...) are accepted and ignored, so
existing plugin files import. A plugin file that fails to import is logged and listed
in :attr:`Plugins.errors`; it does not stop the process.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from cluster.errors import PluginError
from cluster.sdk.timetable_base import Timetable

log = logging.getLogger("tradewind.plugins")


class AirflowPlugin:
    """Subclass it in a plugins-folder module, give it a ``name`` and list what it adds."""

    name: ClassVar[str | None] = None
    source: Any = None
    macros: ClassVar[list[Any]] = []
    timetables: ClassVar[list[type[Timetable]]] = []
    # accepted for Airflow compatibility, not used by Tradewind
    hooks: ClassVar[list[Any]] = []
    executors: ClassVar[list[Any]] = []
    admin_views: ClassVar[list[Any]] = []
    flask_blueprints: ClassVar[list[Any]] = []
    menu_links: ClassVar[list[Any]] = []
    appbuilder_views: ClassVar[list[Any]] = []
    appbuilder_menu_items: ClassVar[list[Any]] = []
    global_operator_extra_links: ClassVar[list[Any]] = []
    operator_extra_links: ClassVar[list[Any]] = []
    ti_deps: ClassVar[list[Any]] = []
    listeners: ClassVar[list[Any]] = []
    hook_lineage_readers: ClassVar[list[Any]] = []
    priority_weight_strategies: ClassVar[list[Any]] = []

    @classmethod
    def validate(cls) -> None:
        """:raises PluginError: when the plugin has no name."""
        if not cls.name:
            raise PluginError(f"plugin {cls.__module__}.{cls.__qualname__} needs a name")

    @classmethod
    def on_load(cls, *args: Any, **kwargs: Any) -> None:
        """Called once when the plugin is registered."""


def class_path(cls: type) -> str:
    """``module.QualName``: how a serialized DAG names a plugin's class."""
    return f"{cls.__module__}.{cls.__qualname__}"


@dataclass
class Plugins:
    """What this process registered: plugins by name, their timetables and macros."""

    plugins: dict[str, AirflowPlugin] = field(default_factory=dict)
    timetables: dict[str, type[Timetable]] = field(default_factory=dict)
    #: ``{plugin name: namespace of its macro functions}``
    macros: dict[str, types.SimpleNamespace] = field(default_factory=dict)
    #: ``{file: error}`` of plugin files that failed to import
    errors: dict[str, str] = field(default_factory=dict)
    folders: list[Path] = field(default_factory=list)

    def register(self, plugin_class: type[AirflowPlugin]) -> None:
        """Register one plugin class (a second plugin of the same name is ignored).

        :raises PluginError: when it has no name.
        """
        plugin_class.validate()
        name = str(plugin_class.name)
        if name in self.plugins:
            return
        plugin = plugin_class()
        self.plugins[name] = plugin
        for timetable in plugin.timetables:
            self.timetables[class_path(timetable)] = timetable
        if plugin.macros:
            self.macros[name] = types.SimpleNamespace(**{m.__name__: m for m in plugin.macros})
        plugin.on_load()


#: the plugins of this process (one per process, like Airflow's plugins manager)
REGISTRY = Plugins()


def is_plugin(value: Any) -> bool:
    return (
        isinstance(value, type) and issubclass(value, AirflowPlugin) and value is not AirflowPlugin
    )


def prepare_syspath(*folders: Path) -> None:
    """Put the DAG and plugins folders on ``sys.path``, as Airflow does."""
    for folder in folders:
        if str(folder) not in sys.path:
            sys.path.append(str(folder))


def load_plugins(folder: Path, *, registry: Plugins = REGISTRY) -> Plugins:
    """Import every module of ``folder`` and register its plugins (once per folder).

    Never raises for a bad plugin file: its error is logged and kept in ``errors``.
    """
    folder = Path(folder)
    if folder in registry.folders:
        return registry
    registry.folders.append(folder)
    if not folder.is_dir():
        return registry
    prepare_syspath(folder)
    for path in sorted(folder.rglob("*.py")):
        if "__pycache__" in path.parts or path.name == "__init__.py":
            continue
        try:
            module = _import(path)
            for value in list(vars(module).values()):
                if is_plugin(value):
                    registry.register(value)
        except Exception as exc:  # user code: report it, keep the process going
            log.exception("Failed to import plugin %s", path)
            registry.errors[str(path)] = f"{type(exc).__name__}: {exc}"
    return registry


def _import(path: Path) -> types.ModuleType:
    """The module of ``path``, named after the file; an import of that name is reused."""
    name = path.stem
    existing = sys.modules.get(name)
    if existing is not None and Path(getattr(existing, "__file__", "") or "") == path:
        return existing
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise PluginError(f"{path}: not a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def plugin_macros(registry: Plugins = REGISTRY) -> dict[str, types.SimpleNamespace]:
    """``{plugin name: macros}`` for the template context's ``macros``."""
    return registry.macros


def find_timetable_class(path: str, *, registry: Plugins = REGISTRY) -> type[Timetable]:
    """The timetable class a serialized DAG names by ``module.QualName``.

    A plugin's registered class is used first; otherwise its module is imported by name
    (the plugins folder and the DAG folder are on ``sys.path``).

    :raises PluginError: when it cannot be imported or is not a timetable.
    """
    if path in registry.timetables:
        return registry.timetables[path]
    module_name, _, qualname = path.rpartition(".")
    try:
        found: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError) as exc:
        raise PluginError(
            f"timetable class {path!r} cannot be imported ({exc}); put its module in the "
            f"plugins folder (core.plugins_folder) of this node"
        ) from exc
    if not (isinstance(found, type) and issubclass(found, Timetable)):
        raise PluginError(f"{path!r} is not a Timetable class")
    return found
