"""``kill -9`` of a local worker and of the scheduler itself: runs still finish, and no try
runs twice (every line a task appends belongs to one recorded try)."""

from __future__ import annotations

import os
import signal
import uuid
from collections import Counter
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from tests.dagfiles import write_dag
from tests.integration.scheduler_harness import (
    StartScheduler,
    alive,
    descendants_of,
    history,
    log_file,
    task_instances,
    task_states,
    tradewind,
    wait_for_dags,
    wait_for_run,
)
from tests.waiting import wait_for

LONG_DAG = """
import time
from datetime import datetime, timedelta
from cluster.sdk import DAG, task

SIDE_EFFECTS = "@SIDE_EFFECTS@"

with DAG("long", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
    @task(retries=1, retry_delay=timedelta(seconds=1))
    def long(ti=None):
        with open(SIDE_EFFECTS, "a") as fh:
            fh.write(f"try {ti.try_number}\\n")
        if ti.try_number == 1:
            time.sleep(120)

    long()
"""


def _trigger(env: dict[str, str], dag_id: str) -> str:
    run_id = f"manual__{uuid.uuid4().hex[:12]}"
    tradewind(env, "dags", "trigger", dag_id, "--run-id", run_id)
    return run_id


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_a_killed_worker_fails_its_try_which_is_retried(
    start_scheduler: StartScheduler,
    scheduler_env: dict[str, str],
    session_factory: sessionmaker[Session],
    dags_folder: Path,
    tradewind_home: Path,
    tmp_path: Path,
) -> None:
    side_effects = tmp_path / "long.txt"
    write_dag(dags_folder / "long.py", LONG_DAG, side_effects=side_effects)
    scheduler = start_scheduler(CORE__PARALLELISM=2, SCHEDULER__ZOMBIE_THRESHOLD=3)
    wait_for_dags(session_factory, {"long"})
    run_id = _trigger(scheduler_env, "long")

    def running_worker() -> int | None:
        (ti,) = task_instances(session_factory, "long", run_id) or [None]
        if ti is None or ti.state != "running" or not _lines(side_effects):
            return None
        return ti.pid

    worker = wait_for(running_worker, timeout=30, message="the long task running")
    assert worker in scheduler.worker_pids()
    task_children = descendants_of(worker)  # none: a Python task runs in the worker itself
    os.kill(worker, signal.SIGKILL)

    state = wait_for_run(session_factory, "long", run_id, timeout=60, scheduler=scheduler)

    assert state == "success", task_states(session_factory, "long", run_id)
    assert _lines(side_effects) == ["try 1", "try 2"]
    tries = [(h.try_number, h.state) for h in history(session_factory, "long", run_id, "long")]
    assert tries == [(1, "up_for_retry"), (2, "success")]
    assert not any(alive(pid) for pid in [worker, *task_children])
    assert len(scheduler.worker_pids()) == 2  # the dead worker was replaced
    # the executor saw its worker die and said so in the try's log
    first_try = log_file(tradewind_home, "long", run_id, "long", attempt=1).read_text()
    assert "killed by signal SIGKILL" in first_try, first_try
    assert "Marking task as UP_FOR_RETRY" in first_try, first_try


#: the scheduler is killed once this many steps started (the last one is still running)
KILL_AFTER_LINES = 3

CHAIN_DAG = """
import os
import time
from datetime import datetime, timedelta
from cluster.sdk import DAG, task, chain

SIDE_EFFECTS = "@SIDE_EFFECTS@"

def _step(ti):
    with open(SIDE_EFFECTS, "a") as fh:
        fh.write(f"{ti.task_id} try {ti.try_number}\\n")
    if ti.task_id == "step_5":
        # no further until the test killed the scheduler (60 s at most): the kill comes
        # mid-chain however slow the test is to notice the first steps
        deadline = time.monotonic() + 60
        while not os.path.exists(SIDE_EFFECTS + ".go") and time.monotonic() < deadline:
            time.sleep(0.05)
    time.sleep(0.2)

with DAG("chain", schedule=None, start_date=datetime(2024, 1, 1),
         default_args={"retries": 2, "retry_delay": timedelta(seconds=1)}) as dag:
    steps = [task(task_id=f"step_{n}")(_step)() for n in range(10)]
    chain(*steps)
"""


def test_a_killed_scheduler_is_replaced_without_running_a_try_twice(
    start_scheduler: StartScheduler,
    scheduler_env: dict[str, str],
    session_factory: sessionmaker[Session],
    dags_folder: Path,
    tmp_path: Path,
) -> None:
    side_effects = tmp_path / "chain.txt"
    write_dag(dags_folder / "chain.py", CHAIN_DAG, side_effects=side_effects)
    settings = {
        "CORE__PARALLELISM": 2,
        "SCHEDULER__ZOMBIE_THRESHOLD": 3,
        "SCHEDULER__QUEUED_TIMEOUT": 4,
    }
    first = start_scheduler(**settings)
    wait_for_dags(session_factory, {"chain"})
    run_id = _trigger(scheduler_env, "chain")
    wait_for(lambda: len(_lines(side_effects)) >= KILL_AFTER_LINES, timeout=60, message="steps ran")
    old_workers = first.worker_pids()
    first.kill()
    assert task_states(session_factory, "chain", run_id)["step_9"] == "none"
    (tmp_path / "chain.txt.go").touch()

    second = start_scheduler(**settings)
    state = wait_for_run(session_factory, "chain", run_id, timeout=90, scheduler=second)
    # the orphaned local workers finished the try they held, then left by themselves
    wait_for(
        lambda: not any(alive(pid) for pid in old_workers),
        timeout=30,
        message=f"the dead scheduler's workers {old_workers} to exit",
    )

    assert state == "success", task_states(session_factory, "chain", run_id)
    lines = _lines(side_effects)
    assert [line for line, count in Counter(lines).items() if count > 1] == []
    executions = Counter(line.split()[0] for line in lines)
    recorded = Counter(h.task_id for h in history(session_factory, "chain", run_id))
    assert executions == recorded
    assert set(executions) == {f"step_{n}" for n in range(10)}
