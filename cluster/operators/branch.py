"""``BaseBranchOperator``: subclass it and say in :meth:`choose_branch` which way to go.

The chosen task ids (or task group ids, which follow the group's roots) run; every
other direct downstream task is skipped, as with ``BranchPythonOperator``. The return
value of ``choose_branch`` is the task's XCom, as in Airflow.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from cluster.operators.python import do_branch
from cluster.sdk.baseoperator import BaseOperator


class BranchMixIn:
    """Airflow's ``BranchMixIn``: :meth:`do_branch` skips what the branch does not follow."""

    def do_branch(self, context: dict[str, Any], branches_to_execute: str | Iterable[str]) -> Any:
        assert isinstance(self, BaseOperator), "BranchMixIn goes on an operator"
        return do_branch(self, context, branches_to_execute)


class BaseBranchOperator(BaseOperator, BranchMixIn):
    """Follow the task id(s) :meth:`choose_branch` returns; skip the other direct downstreams."""

    def choose_branch(self, context: dict[str, Any]) -> str | Iterable[str]:
        """Return a task id, a task group id, or a list of them."""
        raise NotImplementedError(f"{type(self).__name__} must implement choose_branch()")

    def execute(self, context: dict[str, Any]) -> Any:
        return self.do_branch(context, self.choose_branch(context))
