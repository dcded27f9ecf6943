"""Deferral end to end without a triggerer process: DAG files, DAG processor, scheduler
loop, the production pool and the metastore (SQLite, MariaDB, PostgreSQL), on a fake
clock. The test plays the triggerer: it loads the stored triggers, runs each to its first
event and reports it through ``cluster.metastore.triggers`` (the real triggerer's tests
are in tests/cluster and the triggerer's own suite).

What it shows: a deferring try frees its slot (recorded ``deferred``, never counted as
queued or running) while another task runs; the try resumes in its method with the
event, its kwargs and its earlier XComs, as the same try (one history row, no retry
consumed); a failed trigger fails the try with the trigger's traceback in its log; a
trigger timeout fails it on a worker; a clear drops the trigger.
"""

from __future__ import annotations

import asyncio
import importlib
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from cluster import actions
from cluster.logserver.paths import log_path
from cluster.metastore.engine import transaction
from cluster.metastore.models import TaskInstance, Trigger, XCom
from cluster.metastore.secrets import make_fernet
from cluster.metastore.triggers import delete_unused, fail, fire, load, time_out
from cluster.scheduler import reaper
from cluster.scheduler.dagcache import DagCache
from cluster.states import OCCUPYING, TaskState
from tests.dagfiles import write_dag
from tests.integration.scheduler_harness import (
    TEST_ACTOR,
    InProcessScheduler,
    history,
    task_instances,
    task_states,
)

DEFERRING_DAG = """
from datetime import datetime, timedelta
from cluster.sdk import DAG, BaseOperator, task
from cluster.triggers.temporal import TimeDeltaTrigger

class Deferring(BaseOperator):
    def execute(self, context):
        context["ti"].xcom_push("before", "pushed before deferring")
        self.defer(
            trigger=TimeDeltaTrigger(timedelta(seconds=0.2)),
            method_name="resumed",
            kwargs={"n": 5},
            timeout=timedelta(minutes=10),
        )

    def resumed(self, context, event, n):
        before = context["ti"].xcom_pull(task_ids=self.task_id, key="before")
        return {"n": n, "event": event.isoformat(), "before": before}

@task
def meanwhile_free():
    return "ran"

with DAG("deferring", schedule=None, start_date=datetime(2024, 1, 1)):
    Deferring(task_id="wait", retries=@RETRIES@)
    meanwhile_free()
"""


def _instances(sessions: sessionmaker[Session], run_id: str) -> dict[str, TaskInstance]:
    return {ti.task_id: ti for ti in task_instances(sessions, "deferring", run_id)}


def _play_triggerer(harness: InProcessScheduler, *, fail_with: str | None = None) -> int:
    """Run every stored trigger to its first event and report it; how many fired."""
    fernet = make_fernet(harness.settings.core.fernet_key)
    with harness.sessions() as session:
        ids = session.scalars(select(Trigger.id)).all()
        rows = load(session, ids, fernet=fernet)
    fired = 0
    for row in rows:
        module, name = row.classpath.rsplit(".", 1)
        trigger = getattr(importlib.import_module(module), name)(**row.kwargs)

        async def first(trigger: Any = trigger) -> Any:
            async for event in trigger.run():
                return event

        event = asyncio.run(first())

        def report(session: Session, row_id: int = row.id, payload: Any = event.payload) -> int:
            if fail_with is not None:
                return fail(session, row_id, "Trigger failure", [fail_with])
            return fire(session, row_id, payload)

        fired += transaction(harness.sessions, report)
        transaction(harness.sessions, delete_unused)
    return fired


def _setup(harness: InProcessScheduler, dags_folder: Path, run_id: str, retries: int = 0) -> None:
    write_dag(dags_folder / "deferring.py", DEFERRING_DAG.replace("@RETRIES@", str(retries)))
    harness.process_dags()
    harness.trigger("deferring", run_id)


def test_a_deferred_try_frees_its_slot_and_resumes_as_the_same_try(
    inprocess: InProcessScheduler, dags_folder: Path, run_id: str
) -> None:
    harness = inprocess
    _setup(harness, dags_folder, run_id, retries=2)
    for _ in range(3):
        harness.loop.run_once()
    instances = _instances(harness.sessions, run_id)
    wait = instances["wait"]
    assert (wait.state, wait.try_number, wait.next_method) == ("deferred", 1, "resumed")
    assert wait.trigger_id is not None and wait.trigger_timeout is not None
    # the slot is free: the other task ran meanwhile, and nothing holds a slot
    assert instances["meanwhile_free"].state == "success"
    assert not [ti for ti in instances.values() if TaskState(ti.state) in OCCUPYING]
    assert [r.state for r in harness.executor.results if r.message.task_id == "wait"] == [
        TaskState.DEFERRED
    ]

    assert _play_triggerer(harness) == 1
    finished = harness.run_until_finished([("deferring", run_id)])

    assert finished == {("deferring", run_id): "success"}
    wait = _instances(harness.sessions, run_id)["wait"]
    assert (wait.try_number, wait.max_tries, wait.next_method, wait.trigger_id) == (
        1,
        2,
        None,
        None,
    )
    with harness.sessions() as session:
        value = session.scalar(
            select(XCom.value).where(XCom.task_id == "wait", XCom.key == "return_value")
        )
        assert session.scalars(select(Trigger)).all() == []
    assert value is not None and '"n": 5' in value and "pushed before deferring" in value
    assert [
        (h.try_number, h.state) for h in history(harness.sessions, "deferring", run_id, "wait")
    ] == [(1, "success")]
    log = log_path(
        harness.settings.logging.base_log_folder,
        dag_id="deferring",
        run_id=run_id,
        task_id="wait",
        try_number=1,
    ).read_text()
    assert "DEFERRED" in log and log.count("Running try 1") == 2  # one log, two parts


def test_a_failed_trigger_fails_the_try_with_its_traceback_in_the_log(
    inprocess: InProcessScheduler, dags_folder: Path, run_id: str
) -> None:
    harness = inprocess
    _setup(harness, dags_folder, run_id)
    harness.loop.run_once()
    assert _play_triggerer(harness, fail_with="ValueError: the trigger broke\n") == 1

    finished = harness.run_until_finished([("deferring", run_id)])

    assert finished == {("deferring", run_id): "failed"}
    assert task_states(harness.sessions, "deferring", run_id)["wait"] == "failed"
    log = log_path(
        harness.settings.logging.base_log_folder,
        dag_id="deferring",
        run_id=run_id,
        task_id="wait",
        try_number=1,
    ).read_text()
    assert "Trigger failed" in log and "ValueError: the trigger broke" in log
    assert "TaskDeferralError: Trigger failure" in log


def test_a_trigger_timeout_fails_the_try_on_a_worker_and_retries_apply(
    inprocess: InProcessScheduler, dags_folder: Path, run_id: str
) -> None:
    harness = inprocess
    _setup(harness, dags_folder, run_id, retries=1)
    harness.loop.run_once()
    with harness.sessions.begin() as session:
        assert time_out(session, now=harness.clock()) == 0
    harness.clock.advance(11 * 60)
    with harness.sessions.begin() as session:
        reaper.reap(
            session, DagCache(), now=harness.clock(), zombie_threshold=1e9, queued_timeout=1e9
        )
    wait = _instances(harness.sessions, run_id)["wait"]
    assert (wait.state, wait.next_method, wait.trigger_id) == ("scheduled", "__fail__", None)

    harness.loop.run_once()

    wait = _instances(harness.sessions, run_id)["wait"]
    assert (wait.state, wait.try_number, wait.next_method) == ("up_for_retry", 1, None)
    assert [
        (h.try_number, h.state) for h in history(harness.sessions, "deferring", run_id, "wait")
    ] == [(1, "up_for_retry")]


def test_clearing_a_deferred_task_drops_its_trigger(
    inprocess: InProcessScheduler, dags_folder: Path, run_id: str
) -> None:
    harness = inprocess
    _setup(harness, dags_folder, run_id)
    harness.loop.run_once()
    with harness.sessions.begin() as session:
        actions.clear(session, "deferring", run_ids=[run_id], task_ids=["wait"], actor=TEST_ACTOR)
    wait = _instances(harness.sessions, run_id)["wait"]
    assert (wait.state, wait.trigger_id, wait.next_method) == ("none", None, None)
    assert _play_triggerer(harness) == 0  # the trigger fires into nothing
    with harness.sessions() as session:
        assert session.scalars(select(Trigger)).all() == []


MAPPED_DAG = """
from datetime import datetime, timedelta
from cluster.sdk import DAG, BaseOperator
from cluster.triggers.temporal import TimeDeltaTrigger

class Deferring(BaseOperator):
    def __init__(self, *, n, **kwargs):
        super().__init__(**kwargs)
        self.n = n

    def execute(self, context):
        self.defer(trigger=TimeDeltaTrigger(timedelta(seconds=0.1)), method_name="resumed")

    def resumed(self, context, event):
        return self.n * 10

with DAG("mapped_deferring", schedule=None, start_date=datetime(2024, 1, 1)):
    Deferring.partial(task_id="wait").expand(n=[1, 2])
"""


def test_mapped_instances_defer_and_resume_each_with_its_own_arguments(
    inprocess: InProcessScheduler, dags_folder: Path, run_id: str
) -> None:
    harness = inprocess
    write_dag(dags_folder / "mapped_deferring.py", MAPPED_DAG)
    harness.process_dags()
    harness.trigger("mapped_deferring", run_id)
    for _ in range(3):
        harness.loop.run_once()
    states = sorted(
        (ti.map_index, ti.state)
        for ti in task_instances(harness.sessions, "mapped_deferring", run_id)
    )
    assert states == [(0, "deferred"), (1, "deferred")]
    assert _play_triggerer(harness) == 2

    finished = harness.run_until_finished([("mapped_deferring", run_id)])

    assert finished == {("mapped_deferring", run_id): "success"}
    with harness.sessions() as session:
        values = session.execute(
            select(XCom.map_index, XCom.value).where(XCom.key == "return_value")
        ).all()
    assert sorted(values) == [(0, "10"), (1, "20")]
