"""A real ``tradewind scheduler`` with the local executor, on DAGs of the test's own.

Limits are checked from what the runner recorded: no instant may hold more running
task instances than a pool's slots or a DAG's ``max_active_tasks``.
"""

from __future__ import annotations

import random
import uuid
from datetime import datetime
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from cluster.metastore.pools import set_pool
from tests.dagfiles import write_dag
from tests.integration.scheduler_harness import (
    StartScheduler,
    history,
    log_file,
    max_overlap,
    processes_with_cmdline,
    task_instances,
    task_states,
    tradewind,
    tradewind_json,
    wait_for_dags,
    wait_for_run,
)
from tests.waiting import wait_for

LIMITS_DAGS = """
import os
import time
from datetime import datetime
from pathlib import Path
from cluster.sdk import DAG
from cluster.operators.python import PythonOperator

SIDE_EFFECTS = Path("@SIDE_EFFECTS@")


def hold_until_the_limit_is_reached(dag_id, limit, tasks, task_id):
    # Stay running until `limit` tasks of the DAG run at once (or every task has started:
    # the last batch cannot fill the limit), so that the limit being reached never depends
    # on how fast a loaded machine starts tasks. Never reached: fail after 60 s.
    running, started = SIDE_EFFECTS / dag_id / "running", SIDE_EFFECTS / dag_id / "started"
    running.mkdir(parents=True, exist_ok=True)
    started.mkdir(parents=True, exist_ok=True)
    (started / task_id).touch()
    (running / task_id).touch()
    deadline = time.monotonic() + 60
    while len(os.listdir(running)) < limit and len(os.listdir(started)) < tasks:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{sorted(os.listdir(running))} running, {limit} never reached")
        time.sleep(0.05)
    (running / task_id).unlink()


def holders(dag_id, tasks, limit, **kwargs):
    for n in range(tasks):
        PythonOperator(
            task_id=f"hold_{n}",
            python_callable=hold_until_the_limit_is_reached,
            op_kwargs={"dag_id": dag_id, "limit": limit, "tasks": tasks, "task_id": f"hold_{n}"},
            **kwargs,
        )


with DAG("pooled", schedule=None, start_date=datetime(2024, 1, 1)) as pooled:
    holders("pooled", 20, 3, pool="three")

with DAG("limited", schedule=None, start_date=datetime(2024, 1, 1), max_active_tasks=2) as limited:
    holders("limited", 8, 2)
"""


def _intervals(
    sessions: sessionmaker[Session], dag_id: str, run_id: str
) -> list[tuple[datetime, datetime]]:
    spans = []
    for row in history(sessions, dag_id, run_id):
        assert row.start_date is not None and row.end_date is not None
        spans.append((row.start_date, row.end_date))
    return spans


def _trigger(env: dict[str, str], dag_id: str) -> str:
    run_id = f"manual__{uuid.uuid4().hex[:12]}"
    tradewind(env, "dags", "trigger", dag_id, "--run-id", run_id)
    return run_id


def test_pools_and_max_active_tasks_are_never_exceeded(
    start_scheduler: StartScheduler,
    scheduler_env: dict[str, str],
    session_factory: sessionmaker[Session],
    dags_folder: Path,
    tmp_path: Path,
) -> None:
    """Each task waits (60 s at most) until its DAG's limit of tasks run at once: the limit
    is reached however loaded the machine is, and a scheduler that never reaches it fails
    the run; one that exceeds it shows in the recorded intervals."""
    with session_factory.begin() as session:
        set_pool("three", 3, session=session)
    write_dag(dags_folder / "limits.py", LIMITS_DAGS, side_effects=tmp_path)
    scheduler = start_scheduler(CORE__PARALLELISM=8)
    wait_for_dags(session_factory, {"pooled", "limited"})
    runs = {dag_id: _trigger(scheduler_env, dag_id) for dag_id in ("pooled", "limited")}

    for dag_id, run_id in runs.items():
        state = wait_for_run(session_factory, dag_id, run_id, timeout=180, scheduler=scheduler)
        assert state == "success", task_states(session_factory, dag_id, run_id)

    pooled = _intervals(session_factory, "pooled", runs["pooled"])
    limited = _intervals(session_factory, "limited", runs["limited"])
    assert (len(pooled), len(limited)) == (20, 8)
    # never above the limit, and the limit was reached (the tasks did run side by side)
    assert max_overlap(pooled) == 3
    assert max_overlap(limited) == 2


SENSOR_DAG = """
import os
from datetime import datetime
from cluster.sdk import DAG
from cluster.operators.bash import BashOperator
from cluster.sensors.python import PythonSensor

POKES = "@SIDE_EFFECTS@/pokes"
WORKED = "@SIDE_EFFECTS@/worked"

def third_poke_after_work():
    # done once work ran in between: the slot given back is then no matter of timing
    with open(POKES, "a") as fh:
        fh.write("poke\\n")
    with open(POKES) as fh:
        return len(fh.readlines()) >= 3 and os.path.exists(WORKED)

with DAG("reschedule", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
    PythonSensor(
        task_id="wait", python_callable=third_poke_after_work, mode="reschedule", poke_interval=1,
        pool="single", priority_weight=10,
    )
    for n in range(3):
        BashOperator(task_id=f"work_{n}", bash_command="touch @SIDE_EFFECTS@/worked", pool="single")
"""


def test_a_rescheduled_sensor_gives_its_slot_back(
    start_scheduler: StartScheduler,
    scheduler_env: dict[str, str],
    session_factory: sessionmaker[Session],
    dags_folder: Path,
    tmp_path: Path,
) -> None:
    """A 1-slot pool shared by a reschedule-mode sensor (queued first) and three tasks.

    The sensor succeeds only once a task ran: a slot kept between pokes fails the run."""
    with session_factory.begin() as session:
        set_pool("single", 1, session=session)
    write_dag(dags_folder / "reschedule.py", SENSOR_DAG, side_effects=tmp_path)
    scheduler = start_scheduler(CORE__PARALLELISM=2)
    wait_for_dags(session_factory, {"reschedule"})
    run_id = _trigger(scheduler_env, "reschedule")

    state = wait_for_run(session_factory, "reschedule", run_id, timeout=60, scheduler=scheduler)

    assert state == "success", task_states(session_factory, "reschedule", run_id)
    pokes = history(session_factory, "reschedule", run_id, "wait")
    assert len(pokes) >= 3
    assert [p.state for p in pokes] == ["up_for_reschedule"] * (len(pokes) - 1) + ["success"]
    assert (tmp_path / "pokes").read_text().splitlines() == ["poke"] * len(pokes)
    work = [h for h in history(session_factory, "reschedule", run_id) if h.task_id != "wait"]
    assert len(work) == 3 and all(h.state == "success" for h in work)
    # the sensor was queued first, yet work ran between its pokes: the slot was free
    waiting_from, waiting_until = pokes[0].end_date, pokes[-1].start_date
    assert waiting_from is not None and waiting_until is not None
    assert any(
        h.start_date is not None
        and h.end_date is not None
        and waiting_from <= h.start_date
        and h.end_date <= waiting_until
        for h in work
    ), [(h.task_id, h.start_date, h.end_date) for h in [*pokes, *work]]
    assert max_overlap(_intervals(session_factory, "reschedule", run_id)) == 1


HEALTHY_DAG = """
from datetime import datetime
from cluster.sdk import DAG
from cluster.operators.bash import BashOperator

with DAG("healthy", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
    BashOperator(task_id="ok", bash_command="true")
"""
SYNTAX_ERROR = "from cluster.sdk import DAG\n\nwith DAG('broken' as dag:\n    pass\n"
ENDLESS = "# a DAG file whose import never ends\nwhile True:\n    pass\n"


def test_broken_dag_files_never_stop_the_scheduler(
    start_scheduler: StartScheduler,
    scheduler_env: dict[str, str],
    session_factory: sessionmaker[Session],
    dags_folder: Path,
) -> None:
    (dags_folder / "healthy.py").write_text(HEALTHY_DAG)
    (dags_folder / "syntax_error.py").write_text(SYNTAX_ERROR)
    (dags_folder / "endless.py").write_text(ENDLESS)
    scheduler = start_scheduler(CORE__DAG_FILE_PROCESSOR_TIMEOUT=2)
    wait_for_dags(session_factory, {"healthy"})
    first = _trigger(scheduler_env, "healthy")
    assert (
        wait_for_run(session_factory, "healthy", first, timeout=60, scheduler=scheduler)
        == "success"
    )

    # a new endless file while the scheduler runs: the next run still goes through
    (dags_folder / "endless_too.py").write_text(ENDLESS)
    second = _trigger(scheduler_env, "healthy")
    assert (
        wait_for_run(session_factory, "healthy", second, timeout=60, scheduler=scheduler)
        == "success"
    )

    def import_errors() -> dict[str, str]:
        rows = tradewind_json(scheduler_env, "dags", "list-import-errors")
        errors = {Path(r["filepath"]).name: r["error"] for r in rows}
        return errors if len(errors) == 3 else {}

    errors = wait_for(import_errors, timeout=30, interval=0.5, message="three import errors")
    assert sorted(errors) == ["endless.py", "endless_too.py", "syntax_error.py"]
    assert errors["syntax_error.py"].startswith("SyntaxError")
    assert "did not finish within 2 s" in errors["endless.py"]
    assert "did not finish within 2 s" in errors["endless_too.py"]
    assert scheduler.process is not None and scheduler.process.poll() is None


CRASH_DAG = """
import os
import signal
from datetime import datetime, timedelta
from cluster.sdk import DAG, task
from cluster.operators.bash import BashOperator

with DAG("crashes", schedule=None, start_date=datetime(2024, 1, 1), default_args={"retries": 0}) as dag:
    @task
    def exits():
        os._exit(3)

    @task
    def segfaults():
        os.kill(os.getpid(), signal.SIGSEGV)

    BashOperator(
        task_id="times_out", bash_command="@SLEEP@", execution_timeout=timedelta(seconds=2)
    )
    exits()
    segfaults()
"""


def test_crashing_and_timed_out_tasks_fail_and_say_why(
    start_scheduler: StartScheduler,
    scheduler_env: dict[str, str],
    session_factory: sessionmaker[Session],
    dags_folder: Path,
    tradewind_home: Path,
) -> None:
    # a unique argument marks this test's sleep among every process of the machine
    sleep = ["sleep", f"60.{random.randrange(10**8):08d}"]
    write_dag(dags_folder / "crashes.py", CRASH_DAG, sleep=" ".join(sleep))
    scheduler = start_scheduler()
    wait_for_dags(session_factory, {"crashes"})
    run_id = _trigger(scheduler_env, "crashes")

    wait_for(lambda: processes_with_cmdline(sleep), timeout=30, message="the bash task's sleep")
    state = wait_for_run(session_factory, "crashes", run_id, timeout=60, scheduler=scheduler)

    assert state == "failed"
    assert task_states(session_factory, "crashes", run_id) == {
        "exits": "failed",
        "segfaults": "failed",
        "times_out": "failed",
    }
    reasons = {
        "exits": "exited with code 3",
        "segfaults": "killed by signal SIGSEGV",
        "times_out": "timed out after 2 s",
    }
    for task_id, reason in reasons.items():
        text = log_file(tradewind_home, "crashes", run_id, task_id).read_text()
        assert reason in text, f"{task_id}: {text}"
        assert "Marking task as FAILED" in text, f"{task_id}: {text}"
    assert processes_with_cmdline(sleep) == []
    timed_out = [
        t for t in task_instances(session_factory, "crashes", run_id) if t.task_id == "times_out"
    ]
    # cut short by the timeout: well under the sleep's 60 s, however slow the machine
    assert timed_out[0].duration is not None and 2 <= timed_out[0].duration < 60
