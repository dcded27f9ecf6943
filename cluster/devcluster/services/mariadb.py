"""A private MariaDB server for tests, benchmarks and the dev cluster.

It lives entirely under one directory (data, socket, pid file, error log), listens on
the address and port it is given (never the system's 3306), and is stopped by its own
PID. It can be stopped or killed and started again on the same data directory, which
is how tests simulate a metastore outage.
"""

from __future__ import annotations

import getpass
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from cluster.devcluster.services.process import (
    Service,
    ServiceError,
    ServiceProcess,
    require_binary,
    tail,
    wait_until,
)

PACKAGE = "mariadb-server"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 23306


class MariaDB(Service):
    """One ``mariadbd`` with its own data directory under ``base_dir``.

    :param base_dir: created if missing; holds ``data/``, ``tmp/`` (the server's temporary
        files: the shared ``/tmp`` saw another run's cleanup break a bootstrap),
        ``mysqld.sock``, ``mysqld.pid`` and ``err.log``.
    :param database: created at start with ``user`` (granted everything, from any host).
    :param fsync: ``False`` leaves writes in the OS cache: commits survive a SIGKILL of
        the server (what tests inject) but not a machine crash, and DDL gets much faster.
    :param prefix: argv prefix of the server, e.g. ``["ip", "netns", "exec", "ns"]`` to
        run it inside a network namespace (its socket still serves this namespace).
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
        buffer_pool_size: str = "64M",
        fsync: bool = True,
        log_file_size: str = "4M",
        prefix: Sequence[str] = (),
    ) -> None:
        self.base_dir = Path(base_dir)
        self.host = host
        self.port = port
        self.database = database
        self.user = user
        self.password = password
        self.buffer_pool_size = buffer_pool_size
        self.fsync = fsync
        #: InnoDB redo log size: small for tests, larger where write throughput matters
        self.log_file_size = log_file_size
        self.prefix = list(prefix)
        self.data_dir = self.base_dir / "data"
        self.tmp_dir = self.base_dir / "tmp"
        self.socket = self.base_dir / "mysqld.sock"
        self.pid_file = self.base_dir / "mysqld.pid"
        self.error_log = self.base_dir / "err.log"
        self._process = ServiceProcess("mariadbd", self.base_dir / "stdout.log")
        # fail at construction, with the package to install, rather than mid-test
        self._mariadbd = require_binary("mariadbd", package=PACKAGE)
        self._install_db = require_binary("mariadb-install-db", package=PACKAGE)
        self._admin = require_binary("mariadb-admin", package=PACKAGE)
        self._client = require_binary("mariadb", package="mariadb-client")

    # --- addresses --------------------------------------------------------------

    @property
    def url(self) -> str:
        """SQLAlchemy URL of ``database`` for ``user``."""
        return self.url_for(self.database)

    def url_for(self, database: str) -> str:
        """SQLAlchemy URL of another database on this server."""
        return (
            f"mysql+pymysql://{self.user}:{self.password}@{self.host}:{self.port}/"
            f"{database}?charset=utf8mb4"
        )

    def socket_url_for(self, database: str) -> str:
        """SQLAlchemy URL of ``database`` over the Unix socket (reachable from any namespace)."""
        return (
            f"mysql+pymysql://{self.user}:{self.password}@localhost/{database}"
            f"?unix_socket={self.socket}&charset=utf8mb4"
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
            message ends with the tail of its error log.
        """
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        if not (self.data_dir / "mysql").is_dir():
            self._install()
        self._process.start(self._server_argv())
        try:
            wait_until(self._ready_or_dead, timeout=timeout, what="MariaDB start")
        except ServiceError as exc:
            self._process.kill()
            raise ServiceError(f"{exc}\n{self.log_tail()}") from exc
        if not self._process.alive():
            code = self._process.exit_code()
            raise ServiceError(f"mariadbd exited with {code} at start:\n{self.log_tail()}")
        self._create_database_and_user()

    def stop(self, timeout: float = 30.0) -> None:
        """Shut down cleanly (SIGTERM by PID), SIGKILL after ``timeout`` seconds."""
        self._process.stop(timeout)

    def kill(self) -> None:
        """SIGKILL: a crash; InnoDB recovers at the next :meth:`start`."""
        self._process.kill()

    def destroy(self) -> None:
        """Stop the server and delete its data."""
        self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def alive(self) -> bool:
        return self._process.alive()

    def ping(self) -> bool:
        """Whether the server answers on its socket right now."""
        done = subprocess.run(
            [self._admin, "--no-defaults", "-uroot", f"--socket={self.socket}", "ping"],
            capture_output=True,
            check=False,
            timeout=30,
        )
        return done.returncode == 0

    def log_tail(self, lines: int = 40) -> str:
        """The end of the error log, for failure reports."""
        return f"--- {self.error_log} ---\n{tail(self.error_log, lines)}"

    # --- administration ---------------------------------------------------------

    def execute(self, sql: str) -> str:
        """Run SQL as root over the socket and return the client's tab-separated output.

        :raises ServiceError: with the client's error message.
        """
        done = subprocess.run(
            [self._client, "--no-defaults", "-uroot", f"--socket={self.socket}", "-N", "-B"],
            input=sql,
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        if done.returncode != 0:
            raise ServiceError(f"MariaDB refused {sql!r}: {done.stderr.strip()}")
        return done.stdout

    def create_database(self, name: str) -> str:
        """Create an empty utf8mb4 database and return its URL."""
        self.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;")
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        self.execute(f"DROP DATABASE IF EXISTS `{name}`;")

    # --- internals --------------------------------------------------------------

    def _install(self) -> None:
        done = subprocess.run(
            [
                self._install_db,
                "--no-defaults",
                f"--user={getpass.getuser()}",
                f"--datadir={self.data_dir}",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
                f"--innodb-log-file-size={self.log_file_size}",
                f"--tmpdir={self.tmp_dir}",
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
        if done.returncode != 0:
            raise ServiceError(
                f"mariadb-install-db failed ({done.returncode}): "
                f"{(done.stderr or done.stdout).strip()[-2000:]}"
            )

    def _server_argv(self) -> list[str]:
        no_fsync = [
            "--innodb-flush-method=nosync",
            "--innodb-flush-log-at-trx-commit=2",
            "--innodb-doublewrite=0",
            "--sync-frm=0",
        ]
        return [
            *self.prefix,
            self._mariadbd,
            "--no-defaults",
            f"--user={getpass.getuser()}",
            f"--datadir={self.data_dir}",
            f"--port={self.port}",
            f"--bind-address={self.host}",
            f"--socket={self.socket}",
            f"--tmpdir={self.tmp_dir}",
            f"--pid-file={self.pid_file}",
            f"--log-error={self.error_log}",
            f"--innodb-buffer-pool-size={self.buffer_pool_size}",
            f"--innodb-log-file-size={self.log_file_size}",
            "--skip-name-resolve",
            "--character-set-server=utf8mb4",
            "--collation-server=utf8mb4_unicode_ci",
            *([] if self.fsync else no_fsync),
        ]

    def _ready_or_dead(self) -> bool:
        return not self._process.alive() or self.ping()

    def _create_database_and_user(self) -> None:
        user = f"'{self.user}'@'%'"
        self.execute(
            f"CREATE DATABASE IF NOT EXISTS `{self.database}` "
            "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;\n"
            f"CREATE USER IF NOT EXISTS {user} IDENTIFIED BY '{self.password}';\n"
            f"GRANT ALL PRIVILEGES ON *.* TO {user};\n"
        )
