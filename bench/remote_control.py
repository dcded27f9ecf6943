"""What Celery's remote control and task events cost a worker: CPU per task.

One private MariaDB, one RabbitMQ node and one ``tradewind scheduler``; one ``tradewind
worker`` restarted for each of three modes, for ``--rounds`` rounds: ``off``
(``celery.worker_remote_control = false``), ``remote`` (the default: remote control on,
task events off) and ``events`` (remote control on and task events turned on by an
``enable_events`` broadcast, as a running Flower does). Each round runs a DAG of ``--tasks`` no-op Python tasks and reads from /proc the CPU time
(user + system) of the worker's main process (Celery's consumer, where remote control
and task events live) and of its pool processes (where the tries run), before and after
the run; then the main process's CPU over ``--idle`` seconds with nothing to do (the
pidbox consumer and the event heartbeats). It prints figures and never asserts.

    python bench/remote_control.py --tasks 300 --rounds 3
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cryptography.fernet import Fernet  # noqa: E402

from bench.run import CLI, executor, metastore, parsed, run_shape, wait_for  # noqa: E402
from cluster.config import MetastoreSettings, load_settings  # noqa: E402
from cluster.executors.celery_app import build_celery_app  # noqa: E402
from cluster.metastore.engine import create_engine_for, make_session_factory  # noqa: E402
from cluster.metastore.migrate import migrate  # noqa: E402

#: off: no remote control; remote: the default; events: task events on, as Flower sets
MODES = ("off", "remote", "events")

DAG = """
from datetime import datetime
from cluster.sdk import DAG
from cluster.operators.python import PythonOperator


def noop():
    return None


with DAG("remote_control", schedule=None, start_date=datetime(2024, 1, 1), max_active_tasks=1000):
    for i in range(@TASKS@):
        PythonOperator(task_id=f"t{i:04d}", python_callable=noop, do_xcom_push=False)
"""


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one live process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            if ppid == pid:
                found.append(int(entry.name))
    return found


def split(pid: int) -> tuple[float, float]:
    """CPU seconds of the worker's main process and of its pool processes."""
    pool = 0.0
    for child in children(pid):
        try:
            pool += cpu_seconds(child)
        except OSError:
            continue
    return cpu_seconds(pid), pool


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--idle", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    bench_args = argparse.Namespace(executor="celery", workers=1, concurrency=args.concurrency)
    with (
        tempfile.TemporaryDirectory(prefix="tw-rc-") as tmp,
        metastore("mariadb", Path(tmp)) as url,
        executor(bench_args, Path(tmp)) as (executor_env, _),
    ):
        home = Path(tmp)
        (home / "dags").mkdir(exist_ok=True)
        (home / "dags" / "remote_control.py").write_text(DAG.replace("@TASKS@", str(args.tasks)))
        sessions = make_session_factory(create_engine_for(MetastoreSettings(url=url)))
        migrate(sessions.kw["bind"])
        env = {
            **os.environ,
            "TRADEWIND_HOME": str(home),
            "TRADEWIND__METASTORE__URL": url,
            "TRADEWIND__CORE__FERNET_KEY": Fernet.generate_key().decode(),
            "TRADEWIND__CORE__LOAD_EXAMPLES": "false",
            "TRADEWIND__CORE__DAGS_ARE_PAUSED_AT_CREATION": "false",
            "TRADEWIND__LOGGING__LEVEL": "WARNING",
            **executor_env,
        }
        address = "127.0.1.21"
        scheduler = subprocess.Popen([*CLI, "scheduler"], env=env, cwd=ROOT, start_new_session=True)
        try:
            wait_for(lambda: parsed(sessions) >= 1, 120, "the DAG parsed")
            celery = build_celery_app(load_settings(env=env))
            figures: dict[str, list[tuple[float, float, float]]] = {m: [] for m in MODES}
            for _ in range(args.rounds):
                for mode in MODES:
                    enabled = str(mode != "off").lower()
                    worker_env = {**env, "TRADEWIND__CELERY__WORKER_REMOTE_CONTROL": enabled}
                    with worker(worker_env, address, args.concurrency) as pid:
                        if mode == "events":
                            replies = celery.control.enable_events(reply=True, timeout=5)
                            assert replies, "the worker did not answer enable_events"
                        figures[mode].append(measure(sessions, pid, args))
                    main_ms, pool_ms, idle_ms = figures[mode][-1]
                    print(
                        f"{mode:<7} worker main {main_ms:.2f} ms/task, pool {pool_ms:.2f} "
                        f"ms/task, idle main {idle_ms:.2f} ms/s",
                        flush=True,
                    )
            report(figures)
        finally:
            os.killpg(scheduler.pid, signal.SIGTERM)
            scheduler.wait(30)


class worker:
    """A ``tradewind worker`` for one round, ready when entered, stopped (drained) after."""

    def __init__(self, env: dict[str, str], address: str, concurrency: int) -> None:
        self.argv = [*CLI, "worker", "-c", str(concurrency), "--hostname", address]
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> int:
        self.process = subprocess.Popen(
            self.argv, env=self.env, cwd=ROOT, start_new_session=True, stdout=subprocess.DEVNULL
        )
        pid = self.process.pid
        wait_for(lambda: len(children(pid)) >= 1, 60, "the worker's pool")
        time.sleep(3)  # let start-up CPU settle: it is not what is measured
        return pid

    def __exit__(self, *_: object) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGTERM)
        self.process.wait(60)


def measure(sessions: object, pid: int, args: argparse.Namespace) -> tuple[float, float, float]:
    """Main and pool CPU ms per task of one run, and the idle main CPU ms per second."""
    main0, pool0 = split(pid)
    figures = run_shape(sessions, "remote_control")  # type: ignore[arg-type]
    main1, pool1 = split(pid)
    tasks = figures["tasks"]
    idle0 = cpu_seconds(pid)
    time.sleep(args.idle)  # measuring idle CPU over a fixed span is the point here
    idle = (cpu_seconds(pid) - idle0) * 1000 / args.idle
    return (main1 - main0) * 1000 / tasks, (pool1 - pool0) * 1000 / tasks, idle


def report(figures: dict[str, list[tuple[float, float, float]]]) -> None:
    print("\nmeans over the rounds (CPU ms per task; idle: CPU ms per second)")
    for label, index in (("worker main", 0), ("pool", 1), ("idle main", 2)):
        means = {mode: statistics.fmean(f[index] for f in figures[mode]) for mode in MODES}
        cells = "  ".join(f"{mode} {value:6.2f}" for mode, value in means.items())
        print(f"{label:<12} {cells}")


if __name__ == "__main__":
    main()
