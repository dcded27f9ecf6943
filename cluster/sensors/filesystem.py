"""``FileSensor``: wait until a file, a non-empty folder, or a glob match exists."""

from __future__ import annotations

import glob
import os
from datetime import timedelta
from typing import Any

from cluster.errors import NotFoundError, TradewindError
from cluster.sdk.deferral import default_deferrable
from cluster.sdk.runtime import Connection, RuntimeNotConnected
from cluster.sensors.base import BaseSensorOperator
from cluster.triggers.file import FileTrigger


def base_path(fs_conn_id: str) -> str:
    """The ``path`` extra of the connection, or ``""`` when there is no such connection."""
    try:
        conn = Connection.get(fs_conn_id)
    except (RuntimeNotConnected, NotFoundError):
        return ""
    return str(conn.extra_dejson.get("path", ""))


class FileSensor(BaseSensorOperator):
    """Done when ``filepath`` (glob patterns allowed) matches a file or a non-empty folder.

    :param fs_conn_id: a connection whose ``path`` extra prefixes ``filepath``; it is
        ignored when it does not exist.
    :param recursive: let ``**`` match folders at any depth.
    :param deferrable: after a first poke, defer to a :class:`FileTrigger` (with the
        sensor's ``timeout``) instead of holding a slot; default ``operators.default_deferrable``.
    """

    template_fields = ("filepath",)
    ui_color = "#91818a"

    def __init__(
        self,
        *,
        filepath: str,
        fs_conn_id: str = "fs_default",
        recursive: bool = False,
        deferrable: bool | None = None,
        start_from_trigger: bool = False,
        trigger_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.filepath = filepath
        self.fs_conn_id = fs_conn_id
        self.recursive = recursive
        self.deferrable = default_deferrable() if deferrable is None else deferrable
        self.start_from_trigger = start_from_trigger

    @property
    def path(self) -> str:
        return os.path.join(base_path(self.fs_conn_id), self.filepath)

    def execute(self, context: dict[str, Any]) -> Any:
        if not self.deferrable:
            return super().execute(context)
        if self.poke(context):
            return None
        trigger = FileTrigger(
            filepath=self.path, recursive=self.recursive, poke_interval=self.poke_interval
        )
        self.defer(
            trigger=trigger,
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout),
        )

    def execute_complete(self, context: dict[str, Any], event: bool | None = None) -> None:
        """The trigger found the file (its event is ``True``)."""
        if not event:
            raise TradewindError(f"{self.task_id} task failed as {self.filepath} not found.")

    def poke(self, context: dict[str, Any]) -> bool:
        full_path = self.path
        for path in glob.glob(full_path, recursive=self.recursive):
            if os.path.isfile(path):
                return True
            for _, dirs, files in os.walk(path):
                if dirs or files:
                    return True
        return False
