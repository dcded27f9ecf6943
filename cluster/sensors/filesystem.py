"""``FileSensor``: wait until a file, a non-empty folder, or a glob match exists."""

from __future__ import annotations

import glob
import os
from typing import Any

from cluster.errors import NotFoundError
from cluster.sdk.runtime import Connection, RuntimeNotConnected
from cluster.sensors.base import BaseSensorOperator


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
    """

    template_fields = ("filepath",)
    ui_color = "#91818a"

    def __init__(
        self,
        *,
        filepath: str,
        fs_conn_id: str = "fs_default",
        recursive: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.filepath = filepath
        self.fs_conn_id = fs_conn_id
        self.recursive = recursive

    def poke(self, context: dict[str, Any]) -> bool:
        full_path = os.path.join(base_path(self.fs_conn_id), self.filepath)
        for path in glob.glob(full_path, recursive=self.recursive):
            if os.path.isfile(path):
                return True
            for _, dirs, files in os.walk(path):
                if dirs or files:
                    return True
        return False
