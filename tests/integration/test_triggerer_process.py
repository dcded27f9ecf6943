"""Real ``tradewind triggerer`` processes with a scheduler on MariaDB (issue 15's must-shows).

1. A thousand tasks defer on ``TimeDeltaSensorAsync`` with 4 worker slots: at one
   recorded instant all 1,000 are deferred and none runs or waits in a queue (the slots
   are free), and then, once the test opens their gate, every one succeeds. The
   triggerer's CPU per trigger and memory per 1,000 triggers are printed (read from
   /proc; never asserted).
2. Two triggerers; the one holding all 500 triggers is SIGKILLed: the other holds them
   all within 10 s (health timeout 5 s), and once the gate opens every task resumes
   exactly once, as the same try, with its own trigger's event (side effects counted).
3. A deferrable ``ExternalTaskSensor`` resumes once the other DAG's task is done: its
   trigger reads states through the runtime the triggerer installs.

The runs use the local executor; every wait polls the metastore with a deadline.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from cluster import actions
from cluster.metastore.models import Component, TaskInstance, Trigger
from tests.dagfiles import write_dag
from tests.integration.scheduler_harness import (
    CLI,
    REPO,
    SchedulerProcess,
    StartScheduler,
    task_instances,
    wait_for_dags,
    wait_for_run,
)
from tests.waiting import wait_for

pytestmark = pytest.mark.mariadb

SENSORS = 1000
SLOTS = 4
#: the run's logical date is this far ahead, so no sensor's time comes during the test
#: (Airflow's TimeDeltaSensorAsync waits for data_interval_end + delta): what ends the
#: wait is the gate the test opens once all 1,000 are deferred. Deferring them all took
#: 100 s at load 13 on 2 cores, 20-30 s when quiet; a horizon of 120 s made the test
#: wait out those 120 s on every run.
LEAD = timedelta(hours=1)
DELTA = timedelta(seconds=10)
#: a TimeDeltaSensorAsync whose DateTimeTrigger also fires when the gate file exists
#: (plugins folder, on every process's sys.path)
GATED_TIME = """
import asyncio
import os
from datetime import UTC, datetime

from cluster.sensors.time_delta import TimeDeltaSensorAsync
from cluster.triggers.base import TriggerEvent
from cluster.triggers.temporal import DateTimeTrigger


class GatedDateTimeTrigger(DateTimeTrigger):
    def __init__(self, moment, gate, end_from_trigger=False):
        super().__init__(moment, end_from_trigger=end_from_trigger)
        self.gate = gate

    def serialize(self):
        return (
            "gated_time.GatedDateTimeTrigger",
            {"moment": self.moment, "gate": self.gate, "end_from_trigger": self.end_from_trigger},
        )

    async def run(self):
        while not os.path.exists(self.gate) and datetime.now(UTC) < self.moment:
            await asyncio.sleep(0.5)
        yield TriggerEvent(self.moment)


class GatedTimeDeltaSensorAsync(TimeDeltaSensorAsync):
    def __init__(self, *, gate, **kwargs):
        super().__init__(**kwargs)
        self.gate = gate

    def defer(self, *, trigger, method_name, kwargs=None, timeout=None):
        gated = GatedDateTimeTrigger(trigger.moment, self.gate, trigger.end_from_trigger)
        super().defer(trigger=gated, method_name=method_name, kwargs=kwargs, timeout=timeout)
"""
SENSOR_DAG = """
from datetime import datetime, timedelta
from cluster.sdk import DAG
from gated_time import GatedTimeDeltaSensorAsync

with DAG("deferred_many", schedule=None, start_date=datetime(2024, 1, 1), max_active_tasks=@N@):
    for n in range(@N@):
        GatedTimeDeltaSensorAsync(
            task_id=f"wait_{n:04d}", delta=timedelta(seconds=@DELTA@), gate=@GATE@
        )
"""

HANDOVER = 500
#: a trigger of the plugins folder (on every process's sys.path): fires once the gate exists
GATE_TRIGGER = """
import asyncio
import os

from cluster.triggers.base import BaseTrigger, TriggerEvent


class GateTrigger(BaseTrigger):
    def __init__(self, gate, name):
        super().__init__()
        self.gate = gate
        self.name = name

    def serialize(self):
        return ("handover_gate.GateTrigger", {"gate": self.gate, "name": self.name})

    async def run(self):
        while not os.path.exists(self.gate):
            await asyncio.sleep(0.5)
        yield TriggerEvent(self.name)
"""
HANDOVER_DAG = """
import os
from datetime import datetime

from handover_gate import GateTrigger

from cluster.sdk import DAG, BaseOperator

GATE = @GATE@
SIDE_EFFECTS = @SIDE_EFFECTS@


class Gated(BaseOperator):
    def execute(self, context):
        self.defer(trigger=GateTrigger(GATE, self.task_id), method_name="resume")

    def resume(self, context, event=None):
        # one line per resumption of this task: the try and the event it got
        with open(os.path.join(SIDE_EFFECTS, self.task_id), "a") as fh:
            fh.write(f"{context['ti'].try_number} {event}\\n")


with DAG("handover", schedule=None, start_date=datetime(2024, 1, 1), max_active_tasks=@N@):
    for n in range(@N@):
        Gated(task_id=f"gated_{n:03d}")
"""


@pytest.fixture
def metastore_url(mariadb_url: str) -> str:
    """These tests run on MariaDB only (locks and concurrency as in a cluster)."""
    return mariadb_url


class TriggererProcess(SchedulerProcess):
    """One ``tradewind triggerer`` subprocess, in a process group of its own."""

    def start(self) -> TriggererProcess:
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(
                [*CLI, "triggerer"],
                env=self.env,
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def ready(self) -> bool:
        return "triggerer ready" in self.log_file.read_text(errors="replace")


StartTriggerer = Callable[..., TriggererProcess]

#: a short health timeout, so a dead triggerer's triggers are free after 5 s
FAST_TAKEOVER = {
    "TRIGGERER__HEALTH_TIMEOUT": 5,
    "TRIGGERER__HEARTBEAT_INTERVAL": 1,
    "TRIGGERER__POLL_INTERVAL": 0.5,
}


@pytest.fixture
def start_triggerer(
    scheduler_env: dict[str, str], tradewind_home: Path
) -> Iterator[StartTriggerer]:
    started: list[TriggererProcess] = []

    def start(**settings: object) -> TriggererProcess:
        env = dict(scheduler_env)
        env.update({f"TRADEWIND__{k}": str(v) for k, v in {**FAST_TAKEOVER, **settings}.items()})
        process = TriggererProcess(env, tradewind_home / f"triggerer-{len(started)}.log")
        started.append(process.start())
        wait_for(
            process.ready,
            timeout=60,
            message=lambda: f"the triggerer to start:\n{process.log_tail()}",
        )
        return process

    yield start
    for process in reversed(started):
        process.stop()


def trigger_run(
    sessions: sessionmaker[Session], dag_id: str, logical_date: datetime | None = None
) -> str:
    run_id = f"manual__{uuid.uuid4().hex[:12]}"
    with sessions.begin() as session:
        actions.trigger(
            session,
            dag_id,
            actor=actions.Actor("test"),
            run_id=run_id,
            logical_date=logical_date,
        )
    return run_id


def state_counts(sessions: sessionmaker[Session], dag_id: str, run_id: str) -> dict[str, int]:
    """The run's task instances by state, read in one statement (one instant)."""
    with sessions() as session:
        rows = session.execute(
            select(TaskInstance.state, func.count())
            .where(TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id)
            .group_by(TaskInstance.state)
        )
        return {str(state): int(count) for state, count in rows}


def held_by(sessions: sessionmaker[Session]) -> dict[int | None, int]:
    with sessions() as session:
        rows = session.execute(
            select(Trigger.triggerer_id, func.count()).group_by(Trigger.triggerer_id)
        )
        return {owner: int(count) for owner, count in rows}


def component_id(sessions: sessionmaker[Session], pid: int) -> int:
    with sessions() as session:
        found = session.scalar(
            select(Component.id).where(Component.kind == "triggerer", Component.pid == pid)
        )
    assert found is not None, f"no component row of triggerer {pid}"
    return int(found)


@dataclass
class Usage:
    """CPU seconds (user + system) and resident memory of one process, from /proc."""

    cpu: float
    rss_kib: int

    @classmethod
    def of(cls, pid: int) -> Usage:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = int(fields[11]) + int(fields[12])  # utime, stime
        rss = next(
            int(line.split()[1])
            for line in Path(f"/proc/{pid}/status").read_text().splitlines()
            if line.startswith("VmRSS:")
        )
        return cls(ticks / os.sysconf("SC_CLK_TCK"), rss)


def test_a_thousand_deferred_sensors_free_their_slots_and_all_succeed(
    start_scheduler: StartScheduler,
    start_triggerer: StartTriggerer,
    session_factory: sessionmaker[Session],
    tradewind_home: Path,
    dags_folder: Path,
    tmp_path: Path,
) -> None:
    gate = tmp_path / "gate"
    plugins = tradewind_home / "plugins"
    plugins.mkdir()
    (plugins / "gated_time.py").write_text(GATED_TIME)
    write_dag(
        dags_folder / "deferred_many.py",
        SENSOR_DAG,
        n=SENSORS,
        delta=int(DELTA.total_seconds()),
        gate=repr(str(gate)),
    )
    scheduler = start_scheduler(CORE__PARALLELISM=SLOTS)
    triggerer = start_triggerer()
    ready, ready_at = Usage.of(triggerer.pid), time.monotonic()
    wait_for_dags(session_factory, {"deferred_many"})
    idle, idle_at = Usage.of(triggerer.pid), time.monotonic()
    idle_rate = (idle.cpu - ready.cpu) / (idle_at - ready_at)
    run_id = trigger_run(session_factory, "deferred_many", datetime.now(UTC) + LEAD)

    def all_deferred() -> dict[str, int] | None:
        counts = state_counts(session_factory, "deferred_many", run_id)
        return counts if counts.get("deferred") == SENSORS else None

    at_once = wait_for(
        all_deferred,
        timeout=300,
        interval=0.2,
        message=lambda: (
            f"all {SENSORS} deferred at once: "
            f"{state_counts(session_factory, 'deferred_many', run_id)}\n{scheduler.log_tail()}"
        ),
    )
    # one instant: every sensor deferred, none running or queued: the slots are free
    assert at_once == {"deferred": SENSORS}
    print(f"\n{SENSORS} sensors deferred {time.monotonic() - idle_at:.1f} s after the trigger")
    wait_for(
        lambda: (
            held_by(session_factory).get(component_id(session_factory, triggerer.pid)) == SENSORS
        ),
        timeout=60,
        message=lambda: f"the triggerer to hold them all: {held_by(session_factory)}",
    )
    peak = Usage.of(triggerer.pid)
    # nothing fires before the gate opens: still all deferred
    assert state_counts(session_factory, "deferred_many", run_id) == {"deferred": SENSORS}

    gate.touch()
    state = wait_for_run(session_factory, "deferred_many", run_id, timeout=300, scheduler=scheduler)
    assert state == "success", state_counts(session_factory, "deferred_many", run_id)
    assert state_counts(session_factory, "deferred_many", run_id) == {"success": SENSORS}
    wait_for(lambda: held_by(session_factory) == {}, timeout=30, message="trigger rows deleted")
    done = Usage.of(triggerer.pid)
    done_at = time.monotonic()
    _print_usage(idle, peak, done, seconds=done_at - idle_at, idle_rate=idle_rate)


def _print_usage(
    idle: Usage, peak: Usage, done: Usage, *, seconds: float, idle_rate: float
) -> None:
    """The figures for the operations guide (printed, never asserted)."""
    cpu = done.cpu - idle.cpu
    own = max(0.0, cpu - idle_rate * seconds)
    print(
        f"\ntriggerer, {SENSORS} TimeDeltaSensorAsync triggers over {seconds:.1f} s: "
        f"CPU {cpu:.2f} s in all, {idle_rate * 1000:.1f} ms/s when idle; without the idle "
        f"cost {own / SENSORS * 1000:.2f} ms per trigger (claim, decrypt, build, run, fire, "
        f"write); "
        f"RSS idle {idle.rss_kib / 1024:.1f} MiB, holding {SENSORS} "
        f"{peak.rss_kib / 1024:.1f} MiB: {(peak.rss_kib - idle.rss_kib) / 1024:.1f} MiB "
        f"per 1,000 triggers"
    )


def test_the_triggers_of_a_killed_triggerer_are_taken_over_and_fire_once(
    start_scheduler: StartScheduler,
    start_triggerer: StartTriggerer,
    session_factory: sessionmaker[Session],
    tradewind_home: Path,
    dags_folder: Path,
    tmp_path: Path,
) -> None:
    gate = tmp_path / "gate"
    side_effects = tmp_path / "side"
    side_effects.mkdir()
    plugins = tradewind_home / "plugins"
    plugins.mkdir()
    (plugins / "handover_gate.py").write_text(GATE_TRIGGER)
    write_dag(
        dags_folder / "handover.py",
        HANDOVER_DAG,
        n=HANDOVER,
        gate=repr(str(gate)),
        side_effects=repr(str(side_effects)),
    )
    scheduler = start_scheduler(CORE__PARALLELISM=8)
    doomed = start_triggerer()
    doomed_id = component_id(session_factory, doomed.pid)
    wait_for_dags(session_factory, {"handover"})
    run_id = trigger_run(session_factory, "handover")
    wait_for(
        lambda: held_by(session_factory) == {doomed_id: HANDOVER},
        timeout=180,
        interval=0.2,
        message=lambda: (
            f"the first triggerer to hold all {HANDOVER}: {held_by(session_factory)} "
            f"{state_counts(session_factory, 'handover', run_id)}\n{scheduler.log_tail()}"
        ),
    )
    survivor = start_triggerer()
    survivor_id = component_id(session_factory, survivor.pid)
    assert held_by(session_factory) == {doomed_id: HANDOVER}  # a live triggerer keeps its own

    os.kill(doomed.pid, signal.SIGKILL)
    killed_at = time.monotonic()
    wait_for(
        lambda: held_by(session_factory) == {survivor_id: HANDOVER},
        timeout=10,
        interval=0.1,
        message=lambda: f"the takeover: {held_by(session_factory)}\n{survivor.log_tail()}",
    )
    taken_over = time.monotonic() - killed_at
    print(f"\n{HANDOVER} triggers taken over {taken_over:.1f} s after the SIGKILL")
    assert state_counts(session_factory, "handover", run_id) == {"deferred": HANDOVER}

    gate.touch()
    state = wait_for_run(session_factory, "handover", run_id, timeout=300, scheduler=scheduler)
    assert state == "success", state_counts(session_factory, "handover", run_id)
    _assert_each_task_resumed_once(session_factory, run_id, side_effects)


def _assert_each_task_resumed_once(
    sessions: sessionmaker[Session], run_id: str, side_effects: Path
) -> None:
    """One resumption per task, as its first try, with its own trigger's event."""
    lines = {path.name: path.read_text().splitlines() for path in side_effects.iterdir()}
    tasks = {f"gated_{n:03d}" for n in range(HANDOVER)}
    assert set(lines) == tasks
    wrong = {task: seen for task, seen in lines.items() if seen != [f"1 {task}"]}
    assert wrong == {}
    ended = {
        ti.task_id: (ti.state, ti.try_number) for ti in task_instances(sessions, "handover", run_id)
    }
    assert ended == dict.fromkeys(tasks, ("success", 1))


CROSS_DAG = """
from datetime import datetime
from cluster.sdk import DAG
from cluster.operators.empty import EmptyOperator
from cluster.sensors.external_task import ExternalTaskSensor

with DAG("upstream", schedule=None, start_date=datetime(2024, 1, 1)):
    EmptyOperator(task_id="done")

with DAG("downstream", schedule=None, start_date=datetime(2024, 1, 1)):
    ExternalTaskSensor(
        task_id="wait", external_dag_id="upstream", external_task_id="done",
        deferrable=True, poll_interval=0.5,
    )
"""


def test_a_trigger_reads_other_dags_states_through_the_triggerers_runtime(
    start_scheduler: StartScheduler,
    start_triggerer: StartTriggerer,
    session_factory: sessionmaker[Session],
    dags_folder: Path,
) -> None:
    """WorkflowTrigger asks the runtime the triggerer installed (the metastore), never
    the metastore itself: the deferred sensor resumes once the other DAG's task is done."""
    write_dag(dags_folder / "cross.py", CROSS_DAG)
    scheduler = start_scheduler()
    start_triggerer()
    wait_for_dags(session_factory, {"upstream", "downstream"})
    moment = datetime(2025, 3, 1, tzinfo=UTC)
    waiting = trigger_run(session_factory, "downstream", moment)
    wait_for(
        lambda: state_counts(session_factory, "downstream", waiting) == {"deferred": 1},
        timeout=120,
        message=lambda: f"the sensor to defer\n{scheduler.log_tail()}",
    )
    trigger_run(session_factory, "upstream", moment)
    state = wait_for_run(session_factory, "downstream", waiting, timeout=120, scheduler=scheduler)
    assert state == "success", state_counts(session_factory, "downstream", waiting)
