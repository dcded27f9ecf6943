"""Deferral with the real processes: ``tradewind scheduler`` (local executor, 4 slots) and
``tradewind triggerer``, on a DAG of 20 ``TimeDeltaSensorAsync`` tasks.

All 20 are ``deferred`` at one moment while no task instance holds a slot (read from the
metastore), then every one succeeds as its first try: the resumption is the same try.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from cluster.states import OCCUPYING
from tests.integration.scheduler_harness import (
    CLI,
    REPO,
    StartScheduler,
    history,
    task_states,
    tradewind,
    wait_for_dags,
    wait_for_run,
)
from tests.waiting import wait_for

TASKS = 20
SENSORS_DAG = f"""
from datetime import datetime, timedelta
from cluster.sdk import DAG
from cluster.sensors.time_delta import TimeDeltaSensorAsync

with DAG("deferring", schedule=None, start_date=datetime(2024, 1, 1)):
    for n in range({TASKS}):
        TimeDeltaSensorAsync(task_id=f"wait_{{n}}", delta=timedelta(seconds=10))
"""


@pytest.fixture
def triggerer(
    scheduler_env: dict[str, str], tradewind_home: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """A ``tradewind triggerer`` on the test's metastore, stopped by its PID at teardown."""
    log = tradewind_home / "triggerer.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [*CLI, "triggerer"], env=scheduler_env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT
        )
    wait_for(
        lambda: "triggerer ready" in log.read_text() or process.poll() is not None,
        timeout=60,
        message=lambda: f"the triggerer's ready line in\n{log.read_text()}",
    )
    assert process.poll() is None, log.read_text()
    yield process
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


def test_deferred_sensors_free_their_slots_and_resume_as_their_first_try(
    start_scheduler: StartScheduler,
    scheduler_env: dict[str, str],
    session_factory: sessionmaker[Session],
    dags_folder: Path,
    triggerer: subprocess.Popen[bytes],
) -> None:
    (dags_folder / "deferring.py").write_text(SENSORS_DAG)
    scheduler = start_scheduler(CORE__PARALLELISM=4)
    wait_for_dags(session_factory, {"deferring"})
    run_id = f"manual__{uuid.uuid4().hex[:12]}"
    tradewind(scheduler_env, "dags", "trigger", "deferring", "--run-id", run_id)

    def all_deferred_and_no_slot_held() -> bool:
        states = task_states(session_factory, "deferring", run_id).values()
        held = [s for s in states if s in {str(o) for o in OCCUPYING}]
        return list(states).count("deferred") == TASKS and not held

    wait_for(
        all_deferred_and_no_slot_held,
        timeout=60,
        interval=0.1,
        message=lambda: (
            f"all deferred at once: {task_states(session_factory, 'deferring', run_id)}"
        ),
    )
    state = wait_for_run(session_factory, "deferring", run_id, timeout=90, scheduler=scheduler)

    assert state == "success", task_states(session_factory, "deferring", run_id)
    tries = sorted(
        (h.task_id, h.try_number, h.state) for h in history(session_factory, "deferring", run_id)
    )
    assert tries == sorted((f"wait_{n}", 1, "success") for n in range(TASKS))
