"""What the benchmarks share: a private metastore, real Tradewind processes, their CPU.

``bench/run.py``, ``bench/loop.py`` and ``bench/scale.py`` all start a metastore of
their own (SQLite, or a private MariaDB or PostgreSQL made by the tests' own code,
tests/databases.py), start real ``tradewind`` processes against it with one
environment, and read CPU time from ``/proc`` for the processes they measure (never
their own: a benchmark's polling must not show up in what it measures). Nothing here
asserts on time.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from cryptography.fernet import Fernet
from sqlalchemy.orm import Session, sessionmaker

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from cluster.config import MetastoreSettings  # noqa: E402
from cluster.dagfiles.processor import DagProcessor  # noqa: E402
from cluster.execution.logs import open_try_log  # noqa: E402
from cluster.metastore.engine import (  # noqa: E402
    SessionFactory,
    create_engine_for,
    make_session_factory,
    transaction,
)
from cluster.metastore.migrate import migrate  # noqa: E402
from cluster.scheduler.fencing import Fence  # noqa: E402
from tests.databases import KINDS, private_server  # noqa: E402

#: how a benchmark runs the CLI: this interpreter, this checkout
CLI = [sys.executable, "-c", "from cluster.cli.main import main; main()"]
#: what ``--db`` takes: a comma-separated list of these, or an alias
DATABASES = ("sqlite", *KINDS)
DATABASE_ALIASES = {"both": ("sqlite", "mariadb"), "all": DATABASES}


@dataclass
class Metastore:
    """A metastore of a benchmark's own: its URL and the PIDs of its server (none: SQLite)."""

    kind: str
    url: str
    server_pids: list[int] = field(default_factory=list)

    def sessions(self, *, migrated: bool = True) -> sessionmaker[Session]:
        """A session factory of this process (the benchmark's reads), the schema migrated."""
        sessions = make_session_factory(create_engine_for(MetastoreSettings(url=self.url)))
        if migrated:
            migrate(sessions.kw["bind"])
        return sessions


def parsed_and_fenced(sessions: SessionFactory, folder: Path, *, timeout: float) -> Fence:
    """Parse ``folder`` into the metastore (every DAG unpaused) and take the fencing
    lease: what an in-process scheduling loop needs before its first iteration."""
    processor = DagProcessor(
        folders=[folder], sessions=sessions, timeout=timeout, paused_at_creation=False
    )
    report = processor.process()
    assert not report.errors, report.errors
    fence = Fence(host="bench")
    transaction(sessions, lambda s: fence.acquire(s, now=datetime.now(UTC)))
    return fence


def databases_from(arg: str) -> tuple[str, ...]:
    """``--db``'s value as database kinds; :class:`SystemExit` for an unknown one."""
    databases = DATABASE_ALIASES.get(arg) or tuple(d for d in arg.split(",") if d)
    wrong = set(databases) - set(DATABASES)
    if wrong or not databases:
        raise SystemExit(f"--db: unknown database {', '.join(sorted(wrong)) or arg!r}")
    return databases


@contextmanager
def metastore(kind: str, tmp: Path, *, cleanup: ExitStack | None = None) -> Iterator[Metastore]:
    """SQLite in ``tmp``, or a private server sized like a small production one.

    :param cleanup: where the server's data is deleted, once stopped: by default at
        once; given, when that stack closes (see :func:`new_log_file_us`).
    """
    if kind == "sqlite":
        yield Metastore(kind, f"sqlite:///{tmp / 'bench.db'}")
        return
    server = private_server(kind, tmp / kind, large=True)
    server.start()
    try:
        yield Metastore(kind, server.url, [server.pid] if server.pid else [])
    finally:
        if cleanup is None:
            server.destroy()
        else:
            server.stop()
            cleanup.callback(server.destroy)


def tradewind_env(home: Path, url: str, *, parallelism: int = 32, **extra: str) -> dict[str, str]:
    """The environment of every process of one benchmark: one home, one metastore."""
    return {
        **os.environ,
        "TRADEWIND_HOME": str(home),
        "TRADEWIND__METASTORE__URL": url,
        "TRADEWIND__CORE__FERNET_KEY": Fernet.generate_key().decode(),
        "TRADEWIND__CORE__LOAD_EXAMPLES": "false",
        "TRADEWIND__CORE__PARALLELISM": str(parallelism),
        "TRADEWIND__CORE__DAGS_ARE_PAUSED_AT_CREATION": "false",
        "TRADEWIND__LOGGING__LEVEL": os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
        **extra,
    }


def start(
    args: list[str], env: dict[str, str], *, log: Path | None = None
) -> subprocess.Popen[bytes]:
    """``tradewind ARGS`` in a session of its own (so :func:`stop` ends its whole tree);
    its output goes to ``log`` (``BENCH_LOG_DIR`` keeps it), else nowhere."""
    folder = os.environ.get("BENCH_LOG_DIR")
    if log is None and folder:
        log = Path(folder) / f"{args[0]}-{time.time_ns()}.log"
    with contextlib.ExitStack() as stack:
        output = stack.enter_context(log.open("ab")) if log else None
        return subprocess.Popen(
            [*CLI, *args],
            env=env,
            cwd=ROOT,
            start_new_session=True,
            stdout=output or subprocess.DEVNULL,
            stderr=subprocess.STDOUT if output else subprocess.DEVNULL,
        )


def stop(*processes: subprocess.Popen[bytes]) -> None:
    """SIGTERM each process group, then SIGKILL what has not ended after 30 s."""
    for process in processes:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
    for process in processes:
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)


def loop_ms(iterations: int = 3_000_000) -> float:
    """Milliseconds of CPU this process spends on a fixed pure-Python loop, now.

    The machine's speed at this moment, printed beside the figures a change is judged
    by: on a shared VM the same loop has taken 165 ms in one half hour and 290 ms in
    the next, and every figure of a run moves with it. Lower is faster.
    """
    started = time.process_time()
    total = 0
    for i in range(iterations):
        total += i * i % 7
    return (time.process_time() - started) * 1000


def new_log_file_us(folder: Path, count: int = 64) -> float:
    """Microseconds of CPU this process spends making a folder and a file in it, now.

    Every try makes one of each for its log, with the same call. What that costs
    depends on the file system's state more than on Tradewind: on the test VM's root
    ext4 it was 35-60 µs, then 300-1,000 µs for one to five minutes after a large tree
    was deleted (a fresh ext4 did not slow down so; tmpfs: about 20 µs). Inside a
    fan-out's pool processes it then took about half of the CPU a Python no-op try cost
    them. The pairs are left in ``folder``: deleting them now would slow what is
    measured next.
    """
    folder.mkdir(parents=True, exist_ok=True)
    started = time.process_time()
    for number in range(count):
        os.close(open_try_log(folder / f"task_id=probe{number}" / "attempt=1.log"))
    return (time.process_time() - started) * 1e6 / count


def wait_for(
    condition: Callable[[], object], timeout: float, what: str, *, every: float = 0.1
) -> None:
    """Poll ``condition`` every ``every`` seconds (sleeping in between) until it holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"bench: timed out waiting for {what}")
        time.sleep(every)


#: one process as /proc/PID/stat says: parent, own CPU seconds, reaped children's CPU seconds
ProcStat = tuple[int, float, float]


def proc_stats() -> dict[int, ProcStat]:
    """Every process's parent and CPU seconds (user + system), from ``/proc``."""
    stats: dict[int, ProcStat] = {}
    clock = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        own = (int(fields[11]) + int(fields[12])) / clock  # utime stime
        reaped = (int(fields[13]) + int(fields[14])) / clock  # cutime cstime
        stats[int(entry.name)] = (int(fields[1]), own, reaped)
    return stats


def process_tree(stats: dict[int, ProcStat], roots: list[int]) -> set[int]:
    """``roots`` and every live descendant."""
    wanted = set(roots)
    grew = True
    while grew:
        more = {pid for pid, (ppid, *_) in stats.items() if ppid in wanted} - wanted
        wanted |= more
        grew = bool(more)
    return wanted & set(stats)


def own_cpu(pid: int, stats: dict[int, ProcStat] | None = None) -> float:
    """CPU seconds of ``pid`` itself (its children not counted); 0 once it is gone."""
    stats = stats if stats is not None else proc_stats()
    return stats[pid][1] if pid in stats else 0.0


def tree_cpu(roots: list[int], stats: dict[int, ProcStat] | None = None) -> float:
    """CPU seconds of the trees of ``roots``, reaped children included."""
    stats = stats if stats is not None else proc_stats()
    return sum(stats[p][1] + stats[p][2] for p in process_tree(stats, roots))


def cpu_split(roots: list[int], metastore: list[int]) -> dict[str, float]:
    """CPU seconds (user + system, reaped children included) of the first root's own
    process, of every other process of the trees of ``roots`` (workers, tries) and of
    the ``metastore`` server's tree.

    Wall time on a shared machine says little; the CPU a shape costs the scheduler,
    its workers and the metastore server is what a change moves.
    """
    stats = proc_stats()
    split = {
        "scheduler": 0.0,
        "workers": tree_cpu(roots, stats),
        "metastore": tree_cpu(metastore, stats),
    }
    if roots and roots[0] in stats:
        split["scheduler"] = stats[roots[0]][1]
        split["workers"] -= stats[roots[0]][1]
    return split


def pss_mib(pids: set[int] | list[int]) -> float:
    """Proportional memory of ``pids`` together, MiB: each page shared by K processes
    counts 1/K in each (forked pool processes share most of their pages)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, ValueError, IndexError):
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
    return total / 1024
