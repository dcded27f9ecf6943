"""``FileTrigger``: fire once a file (or a non-empty folder) matching a glob exists."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from glob import glob
from typing import Any

from cluster.triggers.base import BaseTrigger, TriggerEvent


class FileTrigger(BaseTrigger):
    """Poll ``filepath`` (a glob) every ``poke_interval`` seconds; the payload is ``True``.

    :param recursive: ``**`` in the glob matches folders recursively.
    """

    def __init__(
        self,
        filepath: str,
        recursive: bool = False,
        poke_interval: float = 5.0,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        self.filepath = filepath
        self.recursive = recursive
        poll = kwargs.get("poll_interval")
        self.poke_interval = float(poll if poll is not None else poke_interval)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            "cluster.triggers.file.FileTrigger",
            {
                "filepath": self.filepath,
                "recursive": self.recursive,
                "poke_interval": self.poke_interval,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        while not self._found():
            await asyncio.sleep(self.poke_interval)
        self.log.info("found %s", self.filepath)
        yield TriggerEvent(True)

    def _found(self) -> bool:
        """What Airflow's trigger looks for: a matching file, or a folder holding files."""
        for path in glob(self.filepath, recursive=self.recursive):
            if os.path.isfile(path):
                return True
            for _, _, files in os.walk(path):
                if files:
                    return True
        return False
