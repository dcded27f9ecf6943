"""``EmptyOperator``: a task that does nothing, used to group and join edges."""

from __future__ import annotations

from typing import Any

from cluster.sdk.baseoperator import BaseOperator


class EmptyOperator(BaseOperator):
    """Does nothing; the scheduler may finish it without sending it to a worker.

    ``inherits_from_empty_operator`` tells the scheduler (through
    ``SerializedTask.extra["empty"]``) that no runner is needed.
    """

    ui_color = "#e8f7e4"
    inherits_from_empty_operator = True

    def execute(self, context: dict[str, Any]) -> None:
        return None


DummyOperator = EmptyOperator
