"""A private PostgreSQL server for tests, benchmarks and the dev cluster.

One ``postgres`` postmaster with its own data directory, Unix socket directory and log,
listening on the address and port it is given (never the system's 5432), stopped by its
own PID. It can be stopped or crashed and started again on the same data directory,
which is how tests simulate a metastore outage.

PostgreSQL refuses to run as root. Run as root (as on the test machines), the server and
``initdb`` run as the ``postgres`` user through ``setpriv`` (which ``exec``\\ s, so the PID
is the postmaster's own), and the data lives in a directory that user can reach: a
folder under the system's temporary directory named after ``base_dir``, linked from
``base_dir/pgdata``. :meth:`PostgreSQL.destroy` removes it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from cluster.devcluster.pids import identify
from cluster.devcluster.services.process import (
    Service,
    ServiceError,
    ServiceProcess,
    require_binary,
    tail,
    wait_until,
)

PACKAGE = "postgresql"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 25432
#: the operating-system user that owns the data when started by root
OS_USER = "postgres"
#: the database superuser created by initdb (trusted locally: the server is private)
SUPERUSER = "postgres"
#: where Debian installs each major version's server binaries
DEBIAN_BIN_DIRS = Path("/usr/lib/postgresql")


def pg_binary(name: str) -> str:
    """The newest installed PostgreSQL's ``name`` (Debian keeps servers off ``PATH``).

    :raises ServiceError: naming the package to install.
    """
    versions = []
    for bin_dir in DEBIAN_BIN_DIRS.glob("*/bin"):
        if bin_dir.parent.name.isdigit() and (bin_dir / name).is_file():
            versions.append((int(bin_dir.parent.name), bin_dir / name))
    if versions:
        return str(max(versions)[1])
    return require_binary(name, package=PACKAGE)


def as_owner(argv: Sequence[str]) -> list[str]:
    """``argv`` run as :data:`OS_USER` when we are root (``setpriv`` execs: same PID)."""
    if os.geteuid() != 0:
        return list(argv)
    setpriv = require_binary("setpriv", package="util-linux")
    return [setpriv, f"--reuid={OS_USER}", f"--regid={OS_USER}", "--clear-groups", "--", *argv]


def owned_run_dir(base_dir: Path, kind: str) -> Path:
    """Where a server started from ``base_dir`` keeps what its OS user must reach.

    Not root: ``base_dir`` itself. Root: a folder under the temporary directory named
    after ``base_dir`` (so a later process finds the same one), owned by :data:`OS_USER`,
    because test and home folders of root are closed to other users.
    """
    if os.geteuid() != 0:
        return base_dir
    digest = hashlib.sha256(str(base_dir.resolve()).encode()).hexdigest()[:16]
    run_dir = Path(tempfile.gettempdir()) / f"tradewind-{kind}-{digest}"
    run_dir.mkdir(mode=0o700, exist_ok=True)
    shutil.chown(run_dir, OS_USER, OS_USER)
    link = base_dir / f"{kind}-run"
    if not link.is_symlink():
        link.symlink_to(run_dir)
    return run_dir


class PostgreSQL(Service):
    """One ``postgres`` with its own data directory.

    :param base_dir: created if missing; holds the server's log (``postgres.log``) and,
        when not run as root, its data (``data/``) and socket.
    :param database: created at start, owned by ``user`` (who may create more).
    :param fsync: ``False`` leaves writes in the OS cache: commits survive a crash of
        the server (what tests inject) but not of the machine, and DDL gets much faster.
    :param prefix: argv prefix of the server, e.g. ``["ip", "netns", "exec", "ns"]``.
    """

    def __init__(
        self,
        base_dir: Path,
        *,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        database: str = "tradewind",
        user: str = "tradewind",
        password: str = "tradewind",
        fsync: bool = True,
        max_connections: int = 300,
        shared_buffers: str = "128MB",
        prefix: Sequence[str] = (),
    ) -> None:
        self.base_dir = Path(base_dir)
        self.host = host
        self.port = port
        self.database = database
        self.user = user
        self.password = password
        self.fsync = fsync
        self.max_connections = max_connections
        self.shared_buffers = shared_buffers
        self.prefix = list(prefix)
        self.error_log = self.base_dir / "postgres.log"
        # SIGINT is PostgreSQL's fast shutdown: SIGTERM would wait for every client
        self._process = ServiceProcess("postgres", self.error_log, stop_signal=signal.SIGINT)
        # fail at construction, with the package to install, rather than mid-test
        self._postgres = pg_binary("postgres")
        self._initdb = pg_binary("initdb")
        self._isready = pg_binary("pg_isready")
        self._psql = pg_binary("psql")
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.run_dir = owned_run_dir(self.base_dir, "postgres")
        self.data_dir = self.run_dir / "data"
        #: the directory of the Unix socket ``.s.PGSQL.<port>``
        self.socket_dir = self.run_dir

    # --- addresses --------------------------------------------------------------

    @property
    def url(self) -> str:
        """SQLAlchemy URL of ``database`` for ``user`` (psycopg 3)."""
        return self.url_for(self.database)

    def url_for(self, database: str) -> str:
        """SQLAlchemy URL of another database on this server."""
        return (
            f"postgresql+psycopg://{self.user}:{self.password}@{self.host}:{self.port}/{database}"
        )

    def socket_url_for(self, database: str) -> str:
        """SQLAlchemy URL of ``database`` over the Unix socket (reachable from any namespace)."""
        return (
            f"postgresql+psycopg://{self.user}:{self.password}@/{database}"
            f"?host={self.socket_dir}&port={self.port}"
        )

    @property
    def pid(self) -> int | None:
        return self._process.pid

    @property
    def process(self) -> ServiceProcess:
        """The server process (its command line, for the dev cluster's records)."""
        return self._process

    # --- life cycle -------------------------------------------------------------

    def start(self, timeout: float = 60.0) -> None:
        """Initialize the data directory if needed, start the server, wait until it answers.

        :raises ServiceError: when the server exits or does not answer in time; the
            message ends with the tail of its log.
        """
        if not (self.data_dir / "PG_VERSION").is_file():
            self._initialize()
        self._process.start([*self.prefix, *as_owner(self._server_argv())])
        try:
            wait_until(self._ready_or_dead, timeout=timeout, what="PostgreSQL start")
        except ServiceError as exc:
            self._process.kill()
            raise ServiceError(f"{exc}\n{self.log_tail()}") from exc
        if not self._process.alive():
            code = self._process.exit_code()
            raise ServiceError(f"postgres exited with {code} at start:\n{self.log_tail()}")
        self._create_user_and_database()

    def stop(self, timeout: float = 30.0) -> None:
        """Fast shutdown (SIGINT by PID: clients are disconnected), SIGKILL after ``timeout``."""
        self._process.stop(timeout)

    def kill(self) -> None:
        """Immediate shutdown (SIGQUIT): a crash, replayed from the WAL at the next start.

        Not SIGKILL: the postmaster's children would outlive it and keep its shared
        memory, and the next start would refuse to run beside them.
        """
        self._process.stop(30.0, sig=signal.SIGQUIT)

    def alive(self) -> bool:
        return self._process.alive()

    def destroy(self) -> None:
        """Stop the server and delete its data (also the directory outside ``base_dir``)."""
        self.stop()
        shutil.rmtree(self.run_dir if self.run_dir != self.base_dir else self.data_dir, True)

    def ping(self) -> bool:
        """Whether the server accepts connections right now."""
        done = subprocess.run(
            [self._isready, "-q", "-h", self.host, "-p", str(self.port), "-U", SUPERUSER],
            capture_output=True,
            check=False,
            timeout=30,
        )
        return done.returncode == 0

    def log_tail(self, lines: int = 40) -> str:
        """The end of the server's log, for failure reports."""
        return f"--- {self.error_log} ---\n{tail(self.error_log, lines)}"

    # --- administration ---------------------------------------------------------

    def execute(self, sql: str, *, database: str = "postgres") -> str:
        """Run SQL as the superuser over the socket; return ``psql``'s unaligned output.

        Each statement runs on its own (``CREATE DATABASE`` cannot run in a transaction).

        :raises ServiceError: with the client's error message.
        """
        done = subprocess.run(
            [
                self._psql,
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                str(self.socket_dir),
                "-p",
                str(self.port),
                "-U",
                SUPERUSER,
                "-d",
                database,
                "-f",
                "-",
            ],
            input=sql,
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        if done.returncode != 0:
            raise ServiceError(f"PostgreSQL refused {sql!r}: {done.stderr.strip()}")
        return done.stdout

    def create_database(self, name: str) -> str:
        """Create an empty UTF-8 database owned by ``user`` and return its URL."""
        self.execute(f'CREATE DATABASE "{name}" OWNER "{self.user}" ENCODING \'UTF8\';')
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        """Drop ``name``, disconnecting whoever is still connected to it."""
        self.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE);')

    # --- internals --------------------------------------------------------------

    def _initialize(self) -> None:
        done = subprocess.run(
            as_owner(
                [
                    self._initdb,
                    "-D",
                    str(self.data_dir),
                    "-A",
                    "trust",
                    "-U",
                    SUPERUSER,
                    "--encoding=UTF8",
                    "--locale=C",
                    *([] if self.fsync else ["--no-sync"]),
                ]
            ),
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
            cwd=self.run_dir,
        )
        if done.returncode != 0:
            raise ServiceError(
                f"initdb failed ({done.returncode}): {(done.stderr or done.stdout).strip()[-2000:]}"
            )

    def _server_argv(self) -> list[str]:
        no_fsync = ["-c", "fsync=off", "-c", "full_page_writes=off"]
        return [
            self._postgres,
            "-D",
            str(self.data_dir),
            "-p",
            str(self.port),
            "-k",
            str(self.socket_dir),
            "-c",
            f"listen_addresses={self.host}",
            "-c",
            f"max_connections={self.max_connections}",
            "-c",
            f"shared_buffers={self.shared_buffers}",
            "-c",
            "logging_collector=off",
            *([] if self.fsync else no_fsync),
        ]

    def _ready_or_dead(self) -> bool:
        return not self._process.alive() or self.ping()

    def _create_user_and_database(self) -> None:
        exists = self.execute(f"SELECT 1 FROM pg_roles WHERE rolname = '{self.user}';").strip()
        if not exists:
            self.execute(f"CREATE ROLE \"{self.user}\" LOGIN CREATEDB PASSWORD '{self.password}';")
        found = self.execute(f"SELECT 1 FROM pg_database WHERE datname = '{self.database}';")
        if not found.strip():
            self.create_database(self.database)


def clear_stale_lock(argv: Sequence[str], *, timeout: float = 30.0) -> None:
    """Before PostgreSQL starts again (``argv``: its command line, with ``-D DATA``, ``-p
    PORT`` and ``-k SOCKETS``) after a crash: wait until the old server's processes have
    left its data directory, then remove its ``postmaster.pid`` and its socket's lock file
    if the PID in them is gone or a zombie.

    A SIGKILLed postmaster is re-parented to PID 1, which may never reap it; PostgreSQL
    takes the zombie for a live server and refuses to start. Its backends run in sessions
    of their own (outside the killed process group) and exit once they see the postmaster
    gone: until then the old shared memory is in use, so the lock is left alone.
    """
    words = list(argv)
    data_dir = Path(words[words.index("-D") + 1]).resolve()
    sockets = Path(words[words.index("-k") + 1])
    port = words[words.index("-p") + 1]
    lock = data_dir / "postmaster.pid"
    try:
        pid = int(lock.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return
    if identify(pid) is not None:
        return  # a live server: PostgreSQL refuses with its own message
    wait_until(
        lambda: not _processes_in(data_dir),
        timeout=timeout,
        what="the crashed PostgreSQL's processes to exit",
    )
    lock.unlink(missing_ok=True)
    (sockets / f".s.PGSQL.{port}.lock").unlink(missing_ok=True)


def _processes_in(folder: Path) -> list[int]:
    """Live processes whose working directory is ``folder`` (PostgreSQL's run in its data)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if Path(os.readlink(entry / "cwd")) == folder and identify(int(entry.name)):
                    found.append(int(entry.name))
    return found
