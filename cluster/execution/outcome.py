"""What one try ended with, as the pool process that ran it reports it to its executor.

The pool process runs user code; the executor's book owns the metastore writes of the
try's end, so a process that dies mid-try leaves nothing half-recorded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class TryOutcome:
    """The end of one try.

    :ivar state: ``success``, ``failed``, ``skipped``, ``up_for_reschedule`` or ``deferred``.
    :ivar retryable: for ``failed``: whether retries may apply (not for
        ``AirflowFailException`` or a sensor timeout).
    :ivar xcoms: ``[(key, JSON text)]`` pushed by the task, the return value included.
    :ivar skip_downstream: task ids a branch or short-circuit decided to skip.
    :ivar reschedule_at: ISO time of the next poke of a sensor in reschedule mode.
    :ivar rendered_map_index: a mapped instance's ``map_index_template``, rendered.
    :ivar map_length: for a task a mapped task expands over: the length of its return
        value (``map_keys``: its keys, when it is a dict), recorded in ``task_map``.
    :ivar dataset_events: for ``success``: ``[{"uri", "extra", "alias"}]`` the outlets
        emit, recorded with the success in one transaction.
    :ivar deferral: for ``deferred``: the trigger's ``classpath`` and ``kwargs``, the
        ``method`` and ``next_kwargs`` to resume with (JSON-encoded by
        :func:`cluster.metastore.triggers.encode_value`) and its ``timeout`` in seconds.
    """

    state: str
    retryable: bool = True
    message: str | None = None
    xcoms: list[tuple[str, str]] = field(default_factory=list)
    skip_downstream: list[str] = field(default_factory=list)
    reschedule_at: str | None = None
    rendered_fields: dict[str, Any] | None = None
    rendered_map_index: str | None = None
    map_length: int | None = None
    map_keys: list[Any] | None = None
    dataset_events: list[dict[str, Any]] = field(default_factory=list)
    deferral: dict[str, Any] | None = None

    @classmethod
    def crashed(cls, message: str) -> TryOutcome:
        """The try ended without a result: exit, signal, timeout or a task that cannot load."""
        return cls(state="failed", retryable=True, message=message)
