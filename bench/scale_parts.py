"""The parts of bench/scale.py: each takes a started metastore and a temp dir, prints."""

from __future__ import annotations

import base64
import itertools
import json
import os
import statistics
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from harness import (
    Metastore,
    own_cpu,
    proc_stats,
    process_tree,
    pss_mib,
    start,
    stop,
    tradewind_env,
    tree_cpu,
    wait_for,
)
from run import DAG_FILES, run_shape
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from cluster import actions
from cluster.dagfiles.processor import DagProcessor
from cluster.devcluster.services.ports import free_port
from cluster.metastore import users
from cluster.metastore.models import Dag, DagRun, TaskInstance
from tests.connections import connections_by_pid
from tests.integration.celery_harness import start_rabbitmq
from tests.integration.scheduler_harness import FINISHED_RUN_STATES, run_state

USER, PASSWORD = "bench", "bench-password"
#: seconds: metastore.idle_timeout of the connections part (the default is 60 s)
IDLE_TIMEOUT = 10
#: a ten-task DAG: one start, eight in parallel, one end
TEN_TASKS = """
from datetime import datetime
from cluster.sdk import DAG
from cluster.operators.empty import EmptyOperator

with DAG({dag_id!r}, schedule={schedule!r}, start_date=datetime({start}), catchup=False):
    first = EmptyOperator(task_id="first")
    last = EmptyOperator(task_id="last")
    first >> [EmptyOperator(task_id=f"t{{i}}") for i in range({middle})] >> last
"""
FANOUT = """
from datetime import datetime
from cluster.sdk import DAG
from cluster.operators.python import PythonOperator


def noop():
    return None


with DAG({dag_id!r}, schedule=None, start_date=datetime(2024, 1, 1), max_active_tasks={tasks}):
    for i in range({tasks}):
        PythonOperator(task_id=f"t{{i:05d}}", python_callable=noop, do_xcom_push=False)
"""


@dataclass(frozen=True)
class Options:
    files: int
    tasks: int
    parallelism: int
    buckets: int


def ten_task_files(folder: Path, count: int, *, schedule: str | None, prefix: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    start = (datetime.now(UTC) - timedelta(days=2)).strftime("%Y, %-m, %-d")
    for n in range(count):
        dag_id = f"{prefix}_{n:05d}"
        source = TEN_TASKS.format(dag_id=dag_id, schedule=schedule, start=start, middle=8)
        (folder / f"{dag_id}.py").write_text(source)


def cpu_now() -> float:
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


# --- dagfiles -----------------------------------------------------------------------


def dagfiles(store: Metastore, tmp: Path, options: Options) -> None:
    folder = tmp / "dags"
    ten_task_files(folder, options.files, schedule=None, prefix="parse")
    sessions = store.sessions()
    processor = DagProcessor(
        folders=[folder], sessions=sessions, timeout=60.0, paused_at_creation=True
    )
    for label in ("cold", "unchanged"):
        wall, cpu, server = time.perf_counter(), cpu_now(), tree_cpu(store.server_pids)
        report = processor.process()
        wall, cpu = time.perf_counter() - wall, cpu_now() - cpu
        print(
            f"in-process pass, {label:<9}: {report.files} files, {len(report.imported)} imported, "
            f"{report.dags} DAGs, {len(report.errors)} errors: {wall:.2f} s wall, "
            f"{cpu:.2f} s CPU (forked imports included), metastore "
            f"{tree_cpu(store.server_pids) - server:.2f} s CPU",
            flush=True,
        )
    env = tradewind_env(tmp, store.url)
    launched = datetime.now(UTC)
    scheduler = start(["scheduler"], env)
    try:
        began = time.perf_counter()
        wait_for(
            lambda: reparsed(sessions, launched) >= options.files, 600, "a cold pass", every=0.2
        )
        print(
            f"scheduler: started, all {options.files} files parsed after "
            f"{time.perf_counter() - began:.2f} s",
            flush=True,
        )
        idle_cpu(scheduler.pid, 10.0, "with every file unchanged")
        delays = [
            change_one(sessions, folder, n)
            for n in range(0, options.files, max(1, options.files // 5))
        ]
        print(
            f"scheduler: a changed file's new version in the metastore after "
            f"{', '.join(f'{d:.2f}' for d in delays)} s (mean {statistics.fmean(delays):.2f} s)"
        )
    finally:
        stop(scheduler)


def reparsed(sessions: sessionmaker[Session], since: datetime) -> int:
    with sessions() as session:
        return (
            session.scalar(select(func.count()).select_from(Dag).where(Dag.last_parsed_at >= since))
            or 0
        )


def idle_cpu(pid: int, seconds: float, what: str) -> None:
    stats = proc_stats()
    before, own = tree_cpu([pid], stats), own_cpu(pid, stats)
    time.sleep(seconds)  # the measured window: nothing of this process runs in it
    stats = proc_stats()
    print(
        f"scheduler: idle {what}: {(tree_cpu([pid], stats) - before) / seconds * 100:.1f} % "
        f"of a core (its own process {(own_cpu(pid, stats) - own) / seconds * 100:.1f} %), "
        f"PSS {pss_mib(process_tree(stats, [pid])):.0f} MiB",
        flush=True,
    )


def change_one(sessions: sessionmaker[Session], folder: Path, n: int) -> float:
    """Give DAG file ``n`` one more task; seconds until the metastore has that version."""
    dag_id = f"parse_{n:05d}"
    with sessions() as session:
        old = session.scalar(select(Dag.fingerprint).where(Dag.dag_id == dag_id))
    path = folder / f"{dag_id}.py"
    path.write_text(path.read_text().replace("range(8)", "range(9)"))
    changed = time.perf_counter()

    def seen() -> bool:
        with sessions() as session:
            return session.scalar(select(Dag.fingerprint).where(Dag.dag_id == dag_id)) != old

    wait_for(seen, 120, f"{dag_id}'s new version", every=0.05)
    return time.perf_counter() - changed


# --- fanout -------------------------------------------------------------------------


def fanout(store: Metastore, tmp: Path, options: Options) -> None:
    dag_id = f"fanout_{options.tasks}_python"
    (tmp / "dags").mkdir()
    (tmp / "dags" / f"{dag_id}.py").write_text(FANOUT.format(dag_id=dag_id, tasks=options.tasks))
    sessions = store.sessions()
    port = free_port()
    env = tradewind_env(
        tmp,
        store.url,
        parallelism=options.parallelism,
        TRADEWIND__METRICS__ENABLED="true",
        TRADEWIND__METRICS__SCHEDULER_PORT=str(port),
        TRADEWIND__WEBSERVER__SECRET_KEY="bench-secret",
    )
    scheduler = start(["scheduler"], env)
    try:
        wait_for(lambda: parsed(sessions, dag_id), 300, f"{dag_id} parsed", every=0.2)
        with sessions.begin() as session:
            run_id = actions.trigger(session, dag_id, actor=actions.Actor("bench")).run_id
        samples = follow(sessions, dag_id, run_id, scheduler.pid, port)
    finally:
        stop(scheduler)
    with sessions() as session:
        run = session.scalars(
            select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id)
        ).one()
    wall = (run.end_date - run.start_date).total_seconds()
    print(
        f"{dag_id}, parallelism {options.parallelism}: {options.tasks} tasks in {wall:.1f} s, "
        f"{options.tasks / wall:.0f} tasks/s, run {run.state}"
    )
    print_buckets(samples, options.tasks, options.buckets)
    grid_times(env, sessions, dag_id)


@dataclass(frozen=True)
class Sample:
    at: float
    finished: int
    scheduler_cpu: float
    pool_cpu: float
    iterations: float
    loop_seconds: float


def follow(
    sessions: sessionmaker[Session], dag_id: str, run_id: str, pid: int, port: int
) -> list[Sample]:
    samples = []
    while True:
        stats = proc_stats()
        own = own_cpu(pid, stats)
        count, total = loop_metrics(port)
        with sessions() as session:
            finished = (
                session.scalar(
                    select(func.count())
                    .select_from(TaskInstance)
                    .where(
                        TaskInstance.dag_id == dag_id,
                        TaskInstance.run_id == run_id,
                        TaskInstance.state.in_(("success", "failed", "skipped", "upstream_failed")),
                    )
                )
                or 0
            )
        samples.append(
            Sample(time.perf_counter(), finished, own, tree_cpu([pid], stats) - own, count, total)
        )
        if run_state(sessions, dag_id, run_id) in FINISHED_RUN_STATES:
            return samples
        time.sleep(0.5)


def loop_metrics(port: int) -> tuple[float, float]:
    """The scheduler's loop histogram: iterations so far and their seconds."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        lines = answer.read().decode().splitlines()
    values = {
        line.split()[0]: float(line.split()[1])
        for line in lines
        if line.startswith("tradewind_scheduler_loop_duration_seconds_")
    }
    return (
        values.get("tradewind_scheduler_loop_duration_seconds_count", 0.0),
        values.get("tradewind_scheduler_loop_duration_seconds_sum", 0.0),
    )


def print_buckets(samples: list[Sample], tasks: int, buckets: int) -> None:
    print(
        f"{'finished tasks':>16}{'wall s':>8}{'tasks/s':>9}{'iterations':>12}{'ms/iter':>9}"
        f"{'sched CPU ms/iter':>19}{'sched CPU ms/task':>19}{'pool CPU ms/task':>18}"
    )
    size = max(1, tasks // buckets)
    edges = [
        next((s for s in samples if s.finished >= b * size), samples[-1]) for b in range(buckets)
    ]
    edges.append(samples[-1])
    for low, high in itertools.pairwise(edges):
        done = max(1, high.finished - low.finished)
        iterations = max(1.0, high.iterations - low.iterations)
        wall = max(1e-9, high.at - low.at)
        print(
            f"{f'{low.finished}-{high.finished}':>16}{wall:>8.1f}{done / wall:>9.0f}"
            f"{iterations:>12.0f}{(high.loop_seconds - low.loop_seconds) * 1000 / iterations:>9.1f}"
            f"{(high.scheduler_cpu - low.scheduler_cpu) * 1000 / iterations:>19.1f}"
            f"{(high.scheduler_cpu - low.scheduler_cpu) * 1000 / done:>19.2f}"
            f"{(high.pool_cpu - low.pool_cpu) * 1000 / done:>18.2f}"
        )


def grid_times(env: dict[str, str], sessions: sessionmaker[Session], dag_id: str) -> None:
    """The grid page and its JSON from a real webserver (one worker), three times each."""
    with sessions.begin() as session:
        users.create_user(USER, PASSWORD, role="Admin", session=session)
    port = free_port()
    web = start(["webserver", "-w", "1", "-b", f"127.0.0.1:{port}"], env)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: fetch(f"{base}/health")[0] == 200, 60, "the webserver", every=0.2)
        for path in (f"/dags/{dag_id}", f"/dags/{dag_id}/grid.json"):
            times = []
            for _ in range(3):
                began = time.perf_counter()
                status, size = fetch(base + path)
                times.append(time.perf_counter() - began)
            print(
                f"GET {path}: {status}, {size / 1024:.0f} KiB, "
                f"{', '.join(f'{t * 1000:.0f}' for t in times)} ms"
            )
    finally:
        stop(web)


def fetch(url: str) -> tuple[int, int]:
    request = urllib.request.Request(url)
    request.add_header("Authorization", "Basic " + _basic())
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, len(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, 0
    except OSError:
        return 0, 0


def _basic() -> str:
    return base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


def parsed(sessions: sessionmaker[Session], *dag_ids: str) -> bool:
    with sessions() as session:
        found = session.scalar(select(func.count()).select_from(Dag).where(Dag.dag_id.in_(dag_ids)))
    return found == len(dag_ids)


# --- hourly -------------------------------------------------------------------------


def hourly(store: Metastore, tmp: Path, options: Options) -> None:
    folder = tmp / "dags"
    folder.mkdir()
    (folder / "chain_50.py").write_text(DAG_FILES["chain_50"])
    sessions = store.sessions()
    env = tradewind_env(tmp, store.url, parallelism=options.parallelism)
    scheduler = start(["scheduler"], env)
    try:
        wait_for(lambda: parsed(sessions, "chain_50"), 300, "chain_50 parsed", every=0.2)
        chain_row("idle scheduler", run_shape(sessions, "chain_50"))
        idle_cpu(scheduler.pid, 10.0, "with chain_50 alone")
        began = time.perf_counter()
        ten_task_files(folder, options.files, schedule="@hourly", prefix="hourly")
        wait_for(lambda: count_dags(sessions) > options.files, 600, "the hourly DAGs", every=0.5)
        print(f"{options.files} hourly DAGs parsed after {time.perf_counter() - began:.1f} s")
        wait_for(
            lambda: finished_runs(sessions) >= options.files, 1800, "their first runs", every=1
        )
        print(
            f"their {options.files} first runs ({options.files * 10} tasks) created and "
            f"finished after {time.perf_counter() - began:.1f} s",
            flush=True,
        )
        idle_cpu(scheduler.pid, 10.0, f"with {options.files} hourly DAGs, no run due")
        chain_row(f"beside {options.files} hourly DAGs", run_shape(sessions, "chain_50"))
    finally:
        stop(scheduler)


def chain_row(label: str, figures: dict[str, float]) -> None:
    print(
        f"chain_50, {label}: {figures['wall']:.2f} s end to end, gap p50 "
        f"{figures['gap50']:.1f} ms, p95 {figures['gap95']:.1f} ms, mean {figures['mean_gap']:.1f} ms",
        flush=True,
    )


def count_dags(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(Dag)) or 0


def finished_runs(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        return (
            session.scalar(
                select(func.count())
                .select_from(DagRun)
                .where(DagRun.dag_id.like("hourly_%"), DagRun.state.in_(FINISHED_RUN_STATES))
            )
            or 0
        )


# --- connections --------------------------------------------------------------------


def connections(store: Metastore, tmp: Path, options: Options) -> None:
    (tmp / "dags").mkdir()
    (tmp / "dags" / "fanout_200.py").write_text(DAG_FILES["fanout_200"])
    sessions = store.sessions()
    with sessions.begin() as session:
        users.create_user(USER, PASSWORD, role="Admin", session=session)
    engine = sessions.kw["bind"]
    env = tradewind_env(
        tmp,
        store.url,
        parallelism=options.parallelism,
        TRADEWIND__WEBSERVER__SECRET_KEY="bench",
        TRADEWIND__METASTORE__IDLE_TIMEOUT=str(IDLE_TIMEOUT),
    )
    port = free_port()
    web = start(["webserver", "-w", "2", "-b", f"127.0.0.1:{port}"], env)
    try:
        wait_for(lambda: fetch(f"http://127.0.0.1:{port}/health")[0] == 200, 60, "the webserver")
        scheduler = start(["scheduler"], env)
        try:
            count_during_run(
                engine, sessions, {"scheduler": scheduler.pid, "webserver": web.pid}, port
            )
        finally:
            stop(scheduler)
        broker = start_rabbitmq(tmp / "rabbitmq", nodes=1)
        try:
            celery = {**env, "TRADEWIND__CORE__EXECUTOR": "celery",
                      "TRADEWIND__CELERY__BROKER_URLS": json.dumps(broker.urls),
                      "TRADEWIND__LOGGING__LOG_SERVER_PORT": str(free_port())}  # fmt: skip
            scheduler = start(["scheduler"], celery)
            worker = start(["worker", "-c", "4", "--hostname", "127.0.0.1"], celery)
            try:
                roots = {
                    "scheduler": scheduler.pid,
                    "celery worker": worker.pid,
                    "webserver": web.pid,
                }
                count_during_run(engine, sessions, roots, port)
            finally:
                stop(scheduler, worker)
        finally:
            broker.stop()
    finally:
        stop(web)


def count_during_run(
    engine: Any, sessions: sessionmaker[Session], roots: dict[str, int], port: int
) -> None:
    """Connections per process while fanout_200 runs (the most seen), and once idle for
    longer than ``metastore.idle_timeout`` (set to :data:`IDLE_TIMEOUT` here)."""
    wait_for(lambda: parsed(sessions, "fanout_200"), 300, "fanout_200 parsed", every=0.2)
    with sessions.begin() as session:
        run_id = actions.trigger(session, "fanout_200", actor=actions.Actor("bench")).run_id
    peak: dict[str, Counter[int]] = {}
    while run_state(sessions, "fanout_200", run_id) not in FINISHED_RUN_STATES:
        fetch(f"http://127.0.0.1:{port}/")
        fetch(f"http://127.0.0.1:{port}/dags/fanout_200")
        for role, counts in by_role(engine, roots).items():
            for pid, n in counts.items():
                peak.setdefault(role, Counter())[pid] = max(peak.get(role, Counter())[pid], n)
        time.sleep(0.3)
    time.sleep(IDLE_TIMEOUT + 5)  # idle: what the processes keep
    idle = by_role(engine, roots)
    stats = proc_stats()
    print(
        f"{'process':<26}{'processes':>10}{'peak per process':>18}{'peak total':>12}{'idle total':>12}{'PSS MiB each':>14}"
    )
    for role in sorted(set(peak) | set(idle)):
        seen = peak.get(role, Counter())
        members = members_of(stats, roots, role)
        print(
            f"{role:<26}{len(seen):>10}{max(seen.values(), default=0):>18}{sum(seen.values()):>12}"
            f"{sum(idle.get(role, Counter()).values()):>12}"
            f"{pss_mib(members) / max(1, len(members)):>14.0f}"
        )


def by_role(engine: Any, roots: dict[str, int]) -> dict[str, Counter[int]]:
    stats = proc_stats()
    roles: dict[str, Counter[int]] = {}
    for pid, n in connections_by_pid(engine).items():
        roles.setdefault(role_of(stats, roots, pid), Counter())[pid] = n
    return roles


def role_of(stats: dict[int, tuple[int, float, float]], roots: dict[str, int], pid: int) -> str:
    for name, root in roots.items():
        if pid == root:
            return name if name != "webserver" else "webserver (gunicorn master)"
        if pid in process_tree(stats, [root]):
            return {
                "scheduler": "scheduler pool process",
                "webserver": "webserver worker",
                "celery worker": "celery pool process",
            }[name]
    return "other (this benchmark, ...)"


def members_of(
    stats: dict[int, tuple[int, float, float]], roots: dict[str, int], role: str
) -> set[int]:
    return {
        pid
        for root in roots.values()
        for pid in process_tree(stats, [root])
        if role_of(stats, roots, pid) == role
    }


PARTS: dict[str, Callable[[Metastore, Path, Options], None]] = {
    "dagfiles": dagfiles,
    "fanout": fanout,
    "hourly": hourly,
    "connections": connections,
}
