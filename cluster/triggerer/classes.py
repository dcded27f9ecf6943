"""Rebuilding a trigger from its row: the class its class path names, with its kwargs.

Class paths are importable module paths (``cluster.triggers.temporal.DateTimeTrigger``,
or a trigger module of the plugins or DAG folder, which the triggerer puts on
``sys.path``). A row written by Airflow-named code (``airflow.triggers.temporal.…``,
``airflow.providers.standard.triggers.…``) resolves through the Airflow compatibility map
even when the ``airflow`` import hook is off. Classes are cached by path: a thousand
triggers of one class cost one import.
"""

from __future__ import annotations

import importlib
from typing import Any

from cluster.errors import TradewindError
from cluster.sdk import airflow_compat
from cluster.triggerer.runner import Trigger


class TriggerClassError(TradewindError):
    """A trigger row names a class that cannot be imported."""


def import_class(classpath: str) -> type[Any]:
    """The class ``classpath`` names.

    :raises TriggerClassError: when the module or the class does not exist.
    """
    module_name, _, name = classpath.rpartition(".")
    if not module_name:
        raise TriggerClassError(f"trigger class path '{classpath}' names no module")
    if module_name == "airflow" or module_name.startswith("airflow."):
        resolved = airflow_compat.resolve(module_name)
        if resolved.target is None:
            raise TriggerClassError(f"cannot run trigger '{classpath}': {resolved.reason}")
        module_name = resolved.target
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise TriggerClassError(f"cannot import trigger module '{module_name}': {exc}") from exc
    found = getattr(module, name, None)
    if not isinstance(found, type):
        raise TriggerClassError(f"module '{module_name}' has no trigger class '{name}'")
    return found


class TriggerFactory:
    """Builds triggers from rows, caching their classes."""

    def __init__(self) -> None:
        self._classes: dict[str, type[Any]] = {}

    def build(self, trigger_id: int, classpath: str, kwargs: dict[str, Any]) -> Trigger:
        """``cls(**kwargs)`` with ``trigger_id`` set on it for its logs.

        :raises TriggerClassError: the class cannot be imported.
        :raises Exception: whatever the trigger's ``__init__`` raises for these kwargs.
        """
        cls = self._classes.get(classpath)
        if cls is None:
            cls = self._classes[classpath] = import_class(classpath)
        trigger = cls(**kwargs)
        trigger.trigger_id = trigger_id
        return trigger
