"""The one message every executor carries: one try of one task instance.

A message names one try of one task instance and the DAG version it belongs to; it is
small, frozen and made of primitives, so it crosses processes and brokers unchanged.
Delivering a message twice is harmless: the runner's claim lets one try run once. It
lives below the scheduler, the executors and the runner so that all three import it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class TaskMessage:
    """``{dag_id, run_id, task_id, map_index, try_number, fingerprint}`` of ARCHITECTURE.md."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    try_number: int
    fingerprint: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TaskMessage:
        return cls(
            dag_id=str(data["dag_id"]),
            run_id=str(data["run_id"]),
            task_id=str(data["task_id"]),
            map_index=int(data["map_index"]),
            try_number=int(data["try_number"]),
            fingerprint=str(data["fingerprint"]),
        )
