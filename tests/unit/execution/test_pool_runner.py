"""A pool process's try writes its whole log through one descriptor, lines in order."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from cluster.config import Settings
from cluster.dagfiles.serialize import serialize_dag
from cluster.dagfiles.serialized import SerializedTask
from cluster.execution.dagbag import DagBag
from cluster.execution.pool import PoolRunner, try_log
from cluster.execution.recording import ClaimedTry
from cluster.messages import TaskMessage
from cluster.metastore.transitions import TaskKey
from cluster.operators.python import PythonOperator
from cluster.sdk import DAG, BaseOperator
from cluster.sdk.runtime import set_runtime
from cluster.states import TaskState

NOW = datetime(2026, 11, 1, tzinfo=UTC)


def _speak() -> str:
    print("from the task")
    return "said"


def _leave() -> None:
    print("leaving")
    sys.exit(3)


with DAG("logged", schedule=None, start_date=NOW) as DAG_ITSELF:
    PythonOperator(task_id="speak", python_callable=_speak)
    PythonOperator(task_id="leave", python_callable=_leave)


class OneDag(DagBag):
    """The DAG above, as a pool process's cache of imported DAGs gives it."""

    def __init__(self) -> None:
        super().__init__(locate=lambda dag_id: ("", ""))

    def task(
        self, dag_id: str, fingerprint: str, task_id: str, *, fileloc: str | None = None
    ) -> tuple[DAG, BaseOperator, SerializedTask]:
        return DAG_ITSELF, DAG_ITSELF.get_task(task_id), serialize_dag(DAG_ITSELF).tasks[task_id]


@pytest.fixture
def root_level() -> Iterator[None]:
    """The runner settles the root logger at INFO for its process and connects the
    SDK's runtime to the metastore, as a pool process keeps them: give pytest's back."""
    root = logging.getLogger()
    level, handler_levels = root.level, [(h, h.level) for h in root.handlers]
    yield
    set_runtime(None)
    root.setLevel(level)
    for handler, handler_level in handler_levels:
        handler.setLevel(handler_level)


def _run(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, task_id: str, map_index: int
) -> tuple[TaskState, list[str], list[Any]]:
    """Run one try; its end state, its log's lines and every ``os.open`` of its log."""
    runner = PoolRunner(settings, sessions=lambda: None, dagbag=OneDag())  # type: ignore[arg-type,return-value]
    message = TaskMessage("logged", "manual__1", task_id, map_index, 1, "fp")
    claimed = ClaimedTry(
        key=TaskKey("logged", "manual__1", task_id, map_index),
        try_number=1,
        max_tries=0,
        start_date=NOW,
        sensor_started_at=None,
        logical_date=NOW,
        data_interval_start=NOW,
        data_interval_end=NOW,
        run_type="manual",
        conf={},
        run_start_date=NOW,
    )
    path = try_log(settings, message)
    opened: list[Any] = []
    real_open = os.open

    def counting_open(file: Any, *args: Any, **kwargs: Any) -> int:
        if str(file).startswith(str(settings.logging.base_log_folder)):
            opened.append(file)
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(os, "open", counting_open)
    finished = runner.run(message, claimed, lambda timeout: None)
    monkeypatch.undo()
    return finished.state, path.read_text().splitlines(), opened


@pytest.mark.usefixtures("root_level")
def test_a_try_logs_its_start_its_output_and_its_end_through_one_descriptor(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A mapped instance's folder is new: it is made, then the log opened once, not
    opened, failed, made and opened again, then reopened for each of our lines."""
    state, lines, opened = _run(settings, monkeypatch, "speak", map_index=4)
    assert state == TaskState.SUCCESS
    assert "Running try 1 of logged.speak (manual__1)" in lines[0]
    assert lines.index("from the task") > 0
    assert "Marking task as SUCCESS" in lines[-1]
    assert [Path(p).name for p in opened] == ["attempt=1.log"]


@pytest.mark.usefixtures("root_level")
def test_a_try_that_exits_says_why_between_its_output_and_its_end(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    state, lines, opened = _run(settings, monkeypatch, "leave", map_index=-1)
    assert state == TaskState.FAILED
    reason = "Task called sys.exit(3) and ended without a result"
    assert "Running try 1 of logged.leave" in lines[0]
    assert lines.index("leaving") < next(i for i, line in enumerate(lines) if reason in line)
    assert lines[-1].endswith(f"Marking task as FAILED: {reason}")
    assert len(opened) == 1
