"""The metastore footprint of a real scheduler with its local pool, counted by the server.

The budget (docs/operations.md): a scheduler holds at most twice ``metastore.pool_size``
connections for its loop, heartbeat and DAG processing plus two for its pump; each pool
process at most two (one kept), and only while its task reads the metastore (here a
Variable); and a connection idle for ``metastore.idle_timeout`` is
closed by the server, so an idle pool holds none. MariaDB's processlist says which
client port holds each connection, ``/proc`` which process owns the port.
"""

from __future__ import annotations

import uuid
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from tests.connections import connections_by_pid
from tests.integration.scheduler_harness import (
    SchedulerProcess,
    StartScheduler,
    descendants_of,
    task_states,
    tradewind,
    wait_for_dags,
    wait_for_run,
)
from tests.waiting import wait_for

POOL_SIZE = 2
IDLE_TIMEOUT = 3
#: connections a scheduler process may hold: its engine's pool and overflow, and the pump's
SCHEDULER_BUDGET = 2 * POOL_SIZE + 2
#: connections a pool process may hold: one kept, one more while a call nests
POOL_PROCESS_BUDGET = 2

FAN_OUT = """
from datetime import datetime
from cluster.sdk import DAG
from cluster.operators.bash import BashOperator

with DAG("fan", schedule=None, start_date=datetime(2024, 1, 1), max_active_tasks=100):
    for n in range(40):
        BashOperator(
            task_id=f"t{n:02d}",
            bash_command="echo {{ ti.try_number }} {{ var.value.get('fan_note', 'none') }}",
        )
"""


def _held(engine: Engine, scheduler: SchedulerProcess) -> tuple[int, Counter[int]]:
    """Connections of the scheduler's own process, and of each process under it."""
    counts = connections_by_pid(engine)
    children = set(descendants_of(scheduler.pid))
    return counts[scheduler.pid], Counter({p: n for p, n in counts.items() if p in children})


@pytest.mark.parametrize(
    "metastore_url", [pytest.param("mariadb", marks=pytest.mark.mariadb)], indirect=True
)
def test_a_scheduler_and_its_pool_stay_within_their_connection_budget(
    start_scheduler: StartScheduler,
    scheduler_env: dict[str, str],
    session_factory: sessionmaker[Session],
    dags_folder: Path,
) -> None:
    (dags_folder / "fan.py").write_text(FAN_OUT)
    scheduler = start_scheduler(
        CORE__PARALLELISM=8, METASTORE__POOL_SIZE=POOL_SIZE, METASTORE__IDLE_TIMEOUT=IDLE_TIMEOUT
    )
    wait_for_dags(session_factory, {"fan"})
    engine = session_factory.kw["bind"]
    peak_own, peak_pool = 0, Counter[int]()
    run_id = f"manual__{uuid.uuid4().hex[:12]}"
    tradewind(scheduler_env, "dags", "trigger", "fan", "--run-id", run_id)

    def finished() -> bool:
        nonlocal peak_own
        own, pool = _held(engine, scheduler)
        peak_own = max(peak_own, own)
        for pid, held in pool.items():
            peak_pool[pid] = max(peak_pool[pid], held)
        states = task_states(session_factory, "fan", run_id).values()
        return list(states).count("success") == 40

    wait_for(finished, timeout=120, interval=0.2, message="the fan-out to finish")
    assert (
        wait_for_run(session_factory, "fan", run_id, timeout=30, scheduler=scheduler) == "success"
    )
    assert 0 < peak_own <= SCHEDULER_BUDGET
    assert peak_pool, "the tries read a Variable: some pool process connected"
    assert max(peak_pool.values()) <= POOL_PROCESS_BUDGET
    # idle: the server closed what the pool processes held; the scheduler keeps only
    # what its loop and heartbeat use every few seconds
    wait_for(
        lambda: sum(_held(engine, scheduler)[1].values()) == 0,
        timeout=IDLE_TIMEOUT * 5,
        message=lambda: f"idle pool processes still hold {_held(engine, scheduler)[1]}",
    )
    assert _held(engine, scheduler)[0] <= SCHEDULER_BUDGET
