"""The layout of task logs, as Airflow lays them out, with no way out of the base folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from cluster.errors import UsageError
from cluster.logserver.paths import log_path


def test_a_try_log_has_airflow_layout_and_a_mapped_one_its_map_index_folder() -> None:
    base = Path("/logs")
    plain = log_path(
        base, dag_id="d", run_id="manual__2024-01-01T00:00:00+00:00", task_id="t", try_number=2
    )
    mapped = log_path(base, dag_id="d", run_id="r", task_id="g.t", try_number=1, map_index=0)
    assert plain.parts == (
        "/", "logs", "dag_id=d", "run_id=manual__2024-01-01T00:00:00+00:00", "task_id=t",
        "attempt=2.log",
    )  # fmt: skip
    assert mapped.parts == (
        "/", "logs", "dag_id=d", "run_id=r", "task_id=g.t", "map_index=0", "attempt=1.log",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("dag_id", "run_id", "task_id", "part"),
    [
        ("..", "r", "t", "dag_id=.."),
        ("d", "a/../../b", "t", "run_id=a/../../b"),
        ("d", "r", ".", "task_id=."),
        ("d", "", "t", "run_id="),
        ("d", "r", "t\x00", "task_id=t\x00"),
    ],
)
def test_an_id_that_would_leave_the_base_folder_is_refused(
    dag_id: str, run_id: str, task_id: str, part: str
) -> None:
    with pytest.raises(UsageError, match="invalid log path component") as error:
        log_path(Path("/logs"), dag_id=dag_id, run_id=run_id, task_id=task_id, try_number=1)
    assert repr(part) in str(error.value)
