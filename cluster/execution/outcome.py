"""What one try ended with, as the task child reports it to its supervisor.

The child runs user code; the supervisor owns the metastore writes. The outcome is
plain JSON over a pipe, so a child that dies mid-write leaves nothing half-recorded.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class TryOutcome:
    """The end of one try.

    :ivar state: ``success``, ``failed``, ``skipped`` or ``up_for_reschedule``.
    :ivar retryable: for ``failed``: whether retries may apply (not for
        ``AirflowFailException`` or a sensor timeout).
    :ivar xcoms: ``[(key, JSON text)]`` pushed by the task, the return value included.
    :ivar skip_downstream: task ids a branch or short-circuit decided to skip.
    :ivar reschedule_at: ISO time of the next poke of a sensor in reschedule mode.
    """

    state: str
    retryable: bool = True
    message: str | None = None
    xcoms: list[tuple[str, str]] = field(default_factory=list)
    skip_downstream: list[str] = field(default_factory=list)
    reschedule_at: str | None = None
    rendered_fields: dict[str, Any] | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), default=str)

    @classmethod
    def from_json(cls, text: str) -> TryOutcome:
        data = json.loads(text)
        data["xcoms"] = [tuple(pair) for pair in data.get("xcoms", [])]
        return cls(**data)

    @classmethod
    def crashed(cls, message: str) -> TryOutcome:
        """The child ended without reporting: exit, signal or timeout."""
        return cls(state="failed", retryable=True, message=message)
