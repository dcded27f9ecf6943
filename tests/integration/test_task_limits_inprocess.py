"""``max_active_tis_per_dag`` and ``max_active_tis_per_dagrun`` end to end: the DAG file's
arguments travel through the serialized DAG to the real scheduler loop, on SQLite,
MariaDB and PostgreSQL.

The executor holds every try it is sent (they stay ``queued``) and the test runs them one
at a time, so the cap is asserted from the states the scheduler wrote after each
iteration, never from tasks happening to overlap in time.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from sqlalchemy import func, select

from cluster.metastore.models import TaskInstance
from cluster.states import OCCUPYING
from tests.integration.scheduler_harness import InProcessScheduler, task_instances

LIMITED_DAG = """
from datetime import datetime
from cluster.sdk import DAG, task

with DAG("limited", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
    @task(max_active_tis_per_dag=2)
    def capped(x):
        return x

    @task(max_active_tis_per_dagrun=1)
    def one_per_run(x):
        return x

    @task
    def free(x):
        return x

    capped.expand(x=[1, 2, 3, 4, 5])
    one_per_run.expand(x=[1, 2, 3])
    free.expand(x=[1, 2, 3])
"""


def _active(harness: InProcessScheduler) -> Counter[tuple[str, str]]:
    """Queued + running instances of the DAG per ``(run_id, task_id)``."""
    ti = TaskInstance
    with harness.sessions() as session:
        rows = session.execute(
            select(ti.run_id, ti.task_id, func.count())
            .where(ti.dag_id == "limited", ti.state.in_([str(s) for s in OCCUPYING]))
            .group_by(ti.run_id, ti.task_id)
        ).all()
    return Counter({(run_id, task_id): int(n) for run_id, task_id, n in rows})


def _per_task(active: Counter[tuple[str, str]], task_id: str) -> int:
    return sum(n for (_, t), n in active.items() if t == task_id)


def test_task_limits_cap_queued_and_running_instances_step_by_step(
    inprocess: InProcessScheduler, dags_folder: Path, run_id: str
) -> None:
    (dags_folder / "limited.py").write_text(LIMITED_DAG)
    inprocess.process_dags()
    runs = [f"{run_id}_a", f"{run_id}_b"]
    for run in runs:
        inprocess.trigger("limited", run)
    executor = inprocess.executor
    executor.held = []
    highest: Counter[str] = Counter()
    highest_in_a_run: Counter[str] = Counter()
    for _ in range(200):
        inprocess.loop.run_once()
        active = _active(inprocess)
        # the states the scheduler produced: never over the caps
        assert _per_task(active, "capped") <= 2, active
        for run in runs:
            assert active[(run, "one_per_run")] <= 1, active
        for task_id in ("capped", "one_per_run", "free"):
            highest[task_id] = max(highest[task_id], _per_task(active, task_id))
            highest_in_a_run[task_id] = max(
                [highest_in_a_run[task_id]] + [active[(run, task_id)] for run in runs]
            )
        if all(inprocess.run_state("limited", run) == "success" for run in runs):
            break
        if executor.held:
            executor.release(1)
        else:
            inprocess.clock.advance(1)
    else:
        raise AssertionError(
            f"runs not finished: {[inprocess.run_state('limited', r) for r in runs]}"
        )
    # the caps were reached (it is the limit that held instances back), and a task
    # without a limit had all its instances of both runs active at once
    assert highest["capped"] == 2
    assert highest["one_per_run"] == 2 and highest_in_a_run["one_per_run"] == 1
    assert highest["free"] == 6
    for run in runs:
        states = Counter(
            (r.task_id, r.state) for r in task_instances(inprocess.sessions, "limited", run)
        )
        assert states == {
            ("capped", "success"): 5,
            ("one_per_run", "success"): 3,
            ("free", "success"): 3,
        }
