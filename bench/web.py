"""Benchmark the web tier: two webservers behind HAProxy on a seeded MariaDB or PostgreSQL.

Starts a private MariaDB (``--db postgres``: PostgreSQL; either made by the tests' own
code, tests/databases.py), seeds it (100 DAGs, 100,000 finished task instances by
default), starts two ``tradewind webserver -w 2`` (gunicorn) and a HAProxy built by
``tradewind haproxy render``'s code, then drives it from a pool of threads, each with
its own keep-alive connection to HAProxy:

* ``GET /api/v1/dags?limit=100`` with an API token: requests/s, p50, p99;
* the DAGs page (``GET /``) with a browser session: pages/s, p50, p99;
* the API again while webserver 1 is SIGKILLed (with its workers) and restarted: the
  share of requests that succeeded;
* before those, the grid's pages one request at a time (bench/web_grid.py): 200 tasks x
  25 runs and a task mapped 1,000 times (target: <= 300 ms server time on MariaDB), and
  a 10,000-task fan-out's grid (target: <= 1 s).

``--charts`` measures instead the server time of the DAGs list with 2,000 DAGs (rows
reused and rebuilt, sorted, a far page) and of the chart tabs (the Gantt chart of a
1,000-task run, ...) on a metastore seeded for them, one request at a time against one
webserver (bench/web_pages.py).

It prints figures and never asserts on them (targets: API >= 300 req/s with
p99 <= 100 ms, DAGs page >= 150 pages/s, >= 99.9 % success during the kill).

    python bench/web.py
    python bench/web.py --db postgres
    python bench/web.py --duration 20 --concurrency 16
    python bench/web.py --metastore-url mysql+pymysql://...  # a metastore seeded before
    python bench/web.py --metastore-url ... --metastore-pid PID  # and its server's CPU
    python bench/web.py --auth basic   # the API with HTTP basic auth instead of a token
    python bench/web.py --pages-only   # only the grid's page timings
    python bench/web.py --charts       # DAGs list of 2,000 DAGs (<= 200 ms), Gantt of a
                                       # 1,000-task run (<= 300 ms), other chart tabs

To compare two versions of the code back to back on a busy machine, seed one database
once and point both trees' ``bench/web.py`` at it with ``--metastore-url``: seeding
takes a minute, and the figures move with the machine's load. The CPU the webservers
and the database server (with its child processes: PostgreSQL's backends) spend per
request moves far less with the load than requests/s do.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import http.client
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests
from cryptography.fernet import Fernet
from sqlalchemy import insert
from sqlalchemy.orm import Session, sessionmaker

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from web_grid import report_pages, seed_grid  # noqa: E402
from web_pages import PAGES, Page, seed_pages, touch_a_dag  # noqa: E402

from cluster.config import MetastoreSettings  # noqa: E402
from cluster.dagfiles.serialized import SerializedDag, SerializedTask  # noqa: E402
from cluster.deploy.haproxy import Webserver  # noqa: E402
from cluster.devcluster.services.haproxy import HAProxy  # noqa: E402
from cluster.devcluster.services.ports import free_port  # noqa: E402
from cluster.devcluster.services.process import wait_until  # noqa: E402
from cluster.errors import AlreadyExistsError  # noqa: E402
from cluster.metastore import users  # noqa: E402
from cluster.metastore.engine import create_engine_for, make_session_factory  # noqa: E402
from cluster.metastore.migrate import migrate  # noqa: E402
from cluster.metastore.models import Dag, DagRun, SerializedDagRow, TaskInstance  # noqa: E402
from tests.databases import KINDS, private_server  # noqa: E402

HOST = "127.0.0.1"
USER, PASSWORD = "bench", "bench-password"
TASKS_PER_DAG = 10
START = datetime(2024, 1, 1, tzinfo=UTC)
STATES = ("success",) * 8 + ("failed", "skipped")


# --- seeding ---------------------------------------------------------------------------


def seed(sessions: sessionmaker[Session], dags: int, task_instances: int) -> None:
    """``dags`` DAGs of ten tasks, and enough finished runs for ``task_instances`` rows."""
    runs_per_dag = max(1, task_instances // (dags * TASKS_PER_DAG))
    with sessions.begin() as session:
        for number in range(dags):
            dag = serialized_dag(f"bench_dag_{number:03d}", tags=(f"team{number % 5}",))
            session.add(
                Dag(dag_id=dag.dag_id, fileloc=dag.fileloc, is_paused=number % 3 == 0,
                    tags=list(dag.tags), owners="bench", timetable_summary="@daily")
            )  # fmt: skip
            session.add(
                SerializedDagRow(dag_id=dag.dag_id, fileloc=dag.fileloc, data=dag.to_json(),
                                 fingerprint=dag.fingerprint())
            )  # fmt: skip
    for number in range(dags):
        dag_id = f"bench_dag_{number:03d}"
        with sessions.begin() as session:
            session.execute(insert(DagRun), [run_row(dag_id, r) for r in range(runs_per_dag)])
            session.execute(
                insert(TaskInstance),
                [ti_row(dag_id, r, t) for r in range(runs_per_dag) for t in range(TASKS_PER_DAG)],
            )


def serialized_dag(dag_id: str, *, tags: tuple[str, ...]) -> SerializedDag:
    ids = [f"task_{i:02d}" for i in range(TASKS_PER_DAG)]
    tasks = {
        task_id: SerializedTask(
            task_id=task_id,
            operator="EmptyOperator",
            upstream_task_ids=tuple(ids[i - 1 : i]),
            downstream_task_ids=tuple(ids[i + 1 : i + 2]),
        )
        for i, task_id in enumerate(ids)
    }
    return SerializedDag(
        dag_id=dag_id,
        fileloc=f"/dags/{dag_id}.py",
        timetable={"type": "null"},
        schedule="@daily",
        tags=tags,
        tasks=tasks,
    )


def run_row(dag_id: str, number: int) -> dict[str, object]:
    when = START + timedelta(days=number)
    return {
        "dag_id": dag_id,
        "run_id": f"scheduled__{when.isoformat()}",
        "logical_date": when,
        "data_interval_start": when,
        "data_interval_end": when + timedelta(days=1),
        "run_type": "scheduled",
        "state": "failed" if number % 10 == 9 else "success",
        "conf": {},
        "queued_at": when,
        "start_date": when,
        "end_date": when + timedelta(minutes=5),
    }


def ti_row(dag_id: str, run: int, task: int) -> dict[str, object]:
    when = START + timedelta(days=run)
    return {
        "dag_id": dag_id,
        "run_id": f"scheduled__{when.isoformat()}",
        "task_id": f"task_{task:02d}",
        "map_index": -1,
        "state": STATES[(run + task) % len(STATES)],
        "try_number": 1,
        "operator": "EmptyOperator",
        "start_date": when,
        "end_date": when + timedelta(seconds=30),
        "duration": 30.0,
        "queued_at": when,
    }


# --- the processes -------------------------------------------------------------------


@dataclass
class WebserverProcess:
    """``tradewind webserver`` in a process group of its own."""

    port: int
    env: dict[str, str]
    log_file: Path
    workers: int = 2
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> WebserverProcess:
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "cluster.cli", "webserver", "-w", str(self.workers),
                 "-b", f"{HOST}:{self.port}"],
                env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        wait_until(self._healthy, timeout=120, what=f"webserver on :{self.port}", interval=0.2)
        return self

    def _healthy(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(f"webserver on :{self.port} exited; see {self.log_file}")
        with contextlib.suppress(requests.RequestException):
            return requests.get(f"http://{HOST}:{self.port}/health", timeout=5).ok
        return False

    def kill(self) -> None:
        """SIGKILL gunicorn and its workers: the node died."""
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(30)

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(30)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)


# --- the load ------------------------------------------------------------------------


@dataclass
class Result:
    """What the load saw: latencies (s) of successful requests, failures by kind."""

    elapsed: float = 0.0
    #: CPU seconds the webservers (gunicorn masters and workers) spent meanwhile
    server_cpu: float | None = None
    #: CPU seconds the metastore's server spent meanwhile (when its PID is known)
    database_cpu: float | None = None
    latencies: list[float] = field(default_factory=list)
    failures: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def ok(self) -> int:
        return len(self.latencies)

    @property
    def total(self) -> int:
        return self.ok + sum(self.failures.values())

    def percentile(self, q: float) -> float:
        if len(self.latencies) < 2:
            return self.latencies[0] if self.latencies else float("nan")
        return statistics.quantiles(self.latencies, n=1000)[int(q * 10) - 1]


def drive(
    port: int, path: str, headers: dict[str, str], *, concurrency: int, duration: float,
    cpu: Callable[[], float] | None = None, database_cpu: Callable[[], float] | None = None,
) -> Result:  # fmt: skip
    """``concurrency`` threads sending ``GET path`` back to back for ``duration`` seconds;
    ``cpu`` and ``database_cpu`` tell the webservers' and the database's CPU seconds so far."""
    result = Result()
    cpu_before = cpu() if cpu is not None else 0.0
    database_before = database_cpu() if database_cpu is not None else 0.0
    deadline = time.monotonic() + duration

    def client() -> None:
        connection = http.client.HTTPConnection(HOST, port, timeout=30)
        latencies: list[float] = []
        failures: Counter[str] = Counter()
        while time.monotonic() < deadline:
            started = time.perf_counter()
            try:
                connection.request("GET", path, headers=headers)
                response = connection.getresponse()
                response.read()
            except (OSError, http.client.HTTPException) as exc:
                failures[type(exc).__name__] += 1
                connection.close()
                connection = http.client.HTTPConnection(HOST, port, timeout=30)
                continue
            if response.status == 200:
                latencies.append(time.perf_counter() - started)
            else:
                failures[f"HTTP {response.status}"] += 1
        connection.close()
        with result.lock:
            result.latencies += latencies
            result.failures.update(failures)

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result.elapsed = time.perf_counter() - started
    if cpu is not None:
        result.server_cpu = cpu() - cpu_before
    if database_cpu is not None:
        result.database_cpu = database_cpu() - database_before
    return result


def report(label: str, result: Result, unit: str) -> None:
    rate = result.ok / result.elapsed if result.elapsed else 0.0
    cpu = per_request(result.server_cpu, result.total)
    database = per_request(result.database_cpu, result.total)
    print(
        f"{label:<34}{rate:>9.1f} {unit:<9}p50 {result.percentile(50) * 1000:>6.1f} ms"
        f"   p99 {result.percentile(99) * 1000:>7.1f} ms   web CPU {cpu} ms/req"
        f"   database CPU {database} ms/req"
        f"   ok {result.ok:>6}   failed {sum(result.failures.values())} "
        f"{dict(result.failures) or ''}"
    )


def per_request(seconds: float | None, requests: int) -> str:
    """CPU milliseconds per request, or ``n/a``."""
    return "  n/a" if seconds is None or not requests else f"{seconds * 1000 / requests:>5.1f}"


def process_cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) used so far by the database server: the process, its
    live children and those it reaped (PostgreSQL serves each connection in a child)."""
    parents: dict[int, int] = {}
    spent: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError):
            fields = stat.read_text().rpartition(")")[2].split()
            number = int(stat.parent.name)
            parents[number] = int(fields[1])
            spent[number] = int(fields[11]) + int(fields[12])  # utime, stime
            if number == pid:
                spent[number] += int(fields[13]) + int(fields[14])  # reaped children
    total = spent.get(pid, 0) + sum(t for p, t in spent.items() if parents.get(p) == pid)
    return total / os.sysconf("SC_CLK_TCK")


def group_cpu_seconds(groups: list[int]) -> float:
    """CPU seconds (user + system) used so far by the live processes of these process
    groups: on a shared, busy machine the webservers' CPU per request moves far less
    with the load than requests/s does."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rpartition(")")[2].split()
            if int(fields[2]) in groups:  # pgrp
                total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def during_kill(
    port: int, headers: dict[str, str], victim: WebserverProcess, haproxy: HAProxy,
    *, concurrency: int, duration: float,
) -> tuple[Result, list[str]]:  # fmt: skip
    """Drive the API while ``victim`` is SIGKILLed and restarted; a timeline of events."""
    events: list[str] = []
    t0 = time.monotonic()

    def note(what: str) -> None:
        events.append(f"{time.monotonic() - t0:6.1f} s  {what}")

    def chaos() -> None:
        time.sleep(duration * 0.2)
        victim.kill()
        note("webserver 1 SIGKILLed")
        haproxy.wait_for_status("m1", "DOWN", timeout=60)
        note("HAProxy marked it DOWN")
        time.sleep(duration * 0.1)
        victim.start()
        note("webserver 1 restarted and healthy")
        haproxy.wait_for_status("m1", "UP", timeout=60)
        note("HAProxy marked it UP")

    thread = threading.Thread(target=chaos)
    thread.start()
    result = drive(port, "/api/v1/dags?limit=100", headers, concurrency=concurrency,
                   duration=duration)  # fmt: skip
    thread.join()
    return result, events


# --- wiring --------------------------------------------------------------------------


def authorization(scheme: str, token: str) -> str:
    """The API's ``Authorization`` header: the token, or the bench user's password."""
    if scheme == "basic":
        return "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    return f"Bearer {token}"


def log_in(base: str) -> str:
    """The session cookie of a browser that logged in with the form."""
    session = requests.Session()
    form = session.get(f"{base}/login", timeout=30)
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token, "no CSRF token on the login page"
    done = session.post(
        f"{base}/login",
        data={"username": USER, "password": PASSWORD, "csrf_token": token[1], "next": "/"},
        allow_redirects=False,
        timeout=30,
    )
    if done.status_code != 302:
        raise RuntimeError(f"login failed: {done.status_code} {done.text[:200]}")
    return "; ".join(f"{c.name}={c.value}" for c in session.cookies)


def api_token(url: str) -> str:
    """A new API token of the bench user in an already seeded metastore."""
    engine = create_engine_for(MetastoreSettings(url=url))
    sessions = make_session_factory(engine)
    with sessions.begin() as session:
        with contextlib.suppress(AlreadyExistsError):
            users.create_user(USER, PASSWORD, role="Admin", session=session)
        token = users.create_api_token(USER, "bench", session=session)[1]
    engine.dispose()
    return token


def metastore(
    tmp: Path, args: argparse.Namespace, stack: contextlib.ExitStack
) -> tuple[str, str, int | None]:
    """The metastore URL, an API token and the database server's PID if known:
    ``--metastore-url`` (and ``--metastore-pid``), or a fresh seeded server of ``--db``."""
    if args.metastore_url:
        return args.metastore_url, api_token(args.metastore_url), args.metastore_pid
    server = private_server(args.db, tmp / args.db, large=True)
    server.start()
    stack.callback(server.destroy)
    return server.url, prepare(server.url, args), server.pid


def prepare(url: str, args: argparse.Namespace) -> str:
    """Migrate and seed the metastore; returns an API token."""
    engine = create_engine_for(MetastoreSettings(url=url))
    migrate(engine)
    sessions = make_session_factory(engine)
    started = time.perf_counter()
    if not args.pages_only:
        seed(sessions, args.dags, args.task_instances)
    print(
        f"seeded {args.dags} DAGs and {args.task_instances:,} task instances "
        f"in {time.perf_counter() - started:.1f} s"
    )
    with sessions.begin() as session:
        users.create_user(USER, PASSWORD, role="Admin", session=session)
        token = users.create_api_token(USER, "bench", session=session)[1]
    engine.dispose()
    return token


@contextlib.contextmanager
def sessions_of(url: str) -> Iterator[sessionmaker[Session]]:
    engine = create_engine_for(MetastoreSettings(url=url))
    try:
        yield make_session_factory(engine)
    finally:
        engine.dispose()


def webserver_env(tmp: Path, url: str) -> dict[str, str]:
    """The environment of a bench webserver on the metastore at ``url``."""
    home = tmp / "home"
    home.mkdir()
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("TRADEWIND")},
        "TRADEWIND_HOME": str(home),
        "TRADEWIND__METASTORE__URL": url,
        "TRADEWIND__CORE__FERNET_KEY": Fernet.generate_key().decode(),
        "TRADEWIND__CORE__LOAD_EXAMPLES": "false",
        "TRADEWIND__WEBSERVER__SECRET_KEY": "bench-secret-key",
        "TRADEWIND__LOGGING__LEVEL": os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
        "PYTHONPATH": str(ROOT),
    }


# --- the DAGs list and the chart tabs, one request at a time (--charts) ----------------


def chart_metastore(
    tmp: Path, args: argparse.Namespace, stack: contextlib.ExitStack
) -> tuple[str, sessionmaker[Session]]:
    """``--metastore-url`` as it is, or a fresh server of ``--db`` seeded for the pages."""
    url = args.metastore_url
    if not url:
        server = private_server(args.db, tmp / args.db, large=True)
        server.start()
        stack.callback(server.destroy)
        url = server.url
    engine = create_engine_for(MetastoreSettings(url=url))
    stack.callback(engine.dispose)
    sessions = make_session_factory(engine)
    if not args.metastore_url:
        migrate(engine)
        started = time.perf_counter()
        seed_pages(sessions)
        print(f"seeded the pages' DAGs and runs in {time.perf_counter() - started:.1f} s")
        with sessions.begin() as session:
            users.create_user(USER, PASSWORD, role="Admin", session=session)
    return url, sessions


def time_page(
    port: int, page: Page, cookie: str, sessions: sessionmaker[Session], server: int, count: int
) -> None:
    """``count`` requests of ``page`` one after another; prints wall ms and server CPU."""
    connection = http.client.HTTPConnection(HOST, port, timeout=60)
    latencies = []
    cpu = 0.0
    for turn in range(count + 2):  # two to warm up
        if page.rebuild:
            touch_a_dag(sessions, turn)
        cpu_before = group_cpu_seconds([server])
        started = time.perf_counter()
        connection.request("GET", page.path, headers={"Cookie": cookie})
        response = connection.getresponse()
        response.read()
        took = time.perf_counter() - started
        if response.status != 200:
            raise RuntimeError(f"{page.path} answered {response.status}")
        if turn >= 2:
            latencies.append(took * 1000)
            cpu += group_cpu_seconds([server]) - cpu_before
    connection.close()
    latencies.sort()
    target = f"(target <= {page.target_ms:g} ms)" if page.target_ms else ""
    print(
        f"{page.label:<42} p50 {statistics.median(latencies):>7.1f} ms"
        f"   p90 {latencies[int(len(latencies) * 0.9) - 1]:>7.1f} ms   max {latencies[-1]:>7.1f} ms"
        f"   web CPU {cpu * 1000 / count:>6.1f} ms/page   {target}"
    )


def charts(tmp: Path, args: argparse.Namespace, stack: contextlib.ExitStack) -> None:
    url, sessions = chart_metastore(tmp, args, stack)
    server = WebserverProcess(free_port(), webserver_env(tmp, url), tmp / "webserver.log", 1)
    stack.callback(server.stop)
    server.start()
    cookie = log_in(f"http://{HOST}:{server.port}")
    assert server.process is not None
    print(
        f"one webserver, one gunicorn worker, one client; {args.page_repeat} requests per "
        f"page; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores\n"
    )
    for page in PAGES:
        time_page(server.port, page, cookie, sessions, server.process.pid, args.page_repeat)
    print(f"\nload average at the end {os.getloadavg()[0]:.1f}")


def bench(tmp: Path, args: argparse.Namespace, stack: contextlib.ExitStack) -> None:
    url, token, database_pid = metastore(tmp, args, stack)
    home = tmp / "home"
    home.mkdir()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TRADEWIND")},
        "TRADEWIND_HOME": str(home),
        "TRADEWIND__METASTORE__URL": url,
        "TRADEWIND__CORE__FERNET_KEY": Fernet.generate_key().decode(),
        "TRADEWIND__CORE__LOAD_EXAMPLES": "false",
        "TRADEWIND__WEBSERVER__SECRET_KEY": "bench-secret-key",
        "TRADEWIND__LOGGING__LEVEL": os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
        "PYTHONPATH": str(ROOT),
    }
    servers = [WebserverProcess(free_port(), env, tmp / f"webserver{n}.log", args.workers)
               for n in (1, 2)]  # fmt: skip
    for server in servers:
        stack.callback(server.stop)
        server.start()
    haproxy = HAProxy(
        tmp / "haproxy", [Webserver(f"m{n}", HOST, s.port) for n, s in enumerate(servers, 1)]
    )
    haproxy.start()
    stack.callback(haproxy.stop)
    for name in ("m1", "m2"):
        haproxy.wait_for_status(name, "UP", timeout=60)
    api_headers = {"Authorization": authorization(args.auth, token)}
    page_headers = {"Cookie": log_in(haproxy.url)}
    print(
        f"two webservers x {args.workers} gunicorn workers behind HAProxy; "
        f"{args.concurrency} keep-alive clients, {args.duration:g} s per figure\n"
    )
    groups = [s.process.pid for s in servers if s.process is not None]
    measure: Callable[[str, dict[str, str]], Result] = lambda path, headers: drive(  # noqa: E731
        haproxy.port, path, headers, concurrency=args.concurrency, duration=args.duration,
        cpu=lambda: group_cpu_seconds(groups),
        database_cpu=None if database_pid is None else lambda: process_cpu_seconds(database_pid),
    )  # fmt: skip
    first = servers[0]
    assert first.process is not None
    with sessions_of(url) as sessions:
        seed_grid(sessions)  # a metastore seeded by an older bench may lack the grid's DAGs
    report_pages(HOST, first.port, page_headers, lambda: group_cpu_seconds([first.process.pid]),
                 args.page_repeat,
                 None if database_pid is None else lambda: process_cpu_seconds(database_pid))  # fmt: skip
    if args.pages_only:
        return
    print()
    measure("/api/v1/dags?limit=100", api_headers)  # warm-up: imports, pools, caches
    report("GET /api/v1/dags?limit=100", measure("/api/v1/dags?limit=100", api_headers), "req/s")
    measure("/", page_headers)
    report("DAGs page (GET /)", measure("/", page_headers), "pages/s")
    if args.kill:
        result, events = during_kill(
            haproxy.port, api_headers, servers[0], haproxy,
            concurrency=args.concurrency, duration=max(args.duration * 2, 20),
        )  # fmt: skip
        report("API while webserver 1 is killed", result, "req/s")
        share = 100.0 * result.ok / result.total if result.total else float("nan")
        print(f"{'':<34}succeeded {result.ok}/{result.total} = {share:.3f} %")
        for event in events:
            print(f"{'':<34}{event}")
        print(f"{'':<34}HAProxy m1 redispatched {haproxy.server_stat('m1')['wredis']} requests")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dags", type=int, default=100)
    parser.add_argument("--task-instances", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers per webserver")
    parser.add_argument("--concurrency", type=int, default=8, help="client threads")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per figure")
    parser.add_argument("--no-kill", dest="kill", action="store_false")
    parser.add_argument(
        "--pages-only", action="store_true",
        help="only time the grid's pages (seeds just their DAGs): no load, no kill",
    )  # fmt: skip
    parser.add_argument("--page-repeat", type=int, default=20, help="requests per timed page")
    parser.add_argument(
        "--charts", action="store_true",
        help="instead: the DAGs list of 2,000 DAGs and the chart tabs (bench/web_pages.py)",
    )  # fmt: skip
    parser.add_argument(
        "--db", choices=KINDS, default="mariadb", help="the private database server to seed"
    )
    parser.add_argument(
        "--metastore-url", help="use this metastore, seeded by an earlier run, as it is"
    )
    parser.add_argument(
        "--metastore-pid", type=int, help="PID of --metastore-url's server, to report its CPU"
    )
    parser.add_argument(
        "--auth", choices=("token", "basic"), default="token", help="how API calls sign in"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tw-webbench-") as tmp, contextlib.ExitStack() as stack:
        (charts if args.charts else bench)(Path(tmp), args, stack)


if __name__ == "__main__":
    main()
