"""A private PgBouncer in front of a private PostgreSQL, for tests and the dev cluster.

Transaction pooling, as operators run it in front of a connection-hungry orchestrator:
each client transaction borrows a server connection and gives it back at its end, so
many client connections share a few server ones. Clients must therefore keep no session
state between transactions, and must not use server-side prepared statements
(PgBouncer 1.18 does not carry them between server connections): Tradewind's
``metastore.pgbouncer`` setting turns psycopg's off.

Like PostgreSQL, PgBouncer refuses to run as root: as root it runs as the ``postgres``
user (through ``setpriv``, same PID) with its configuration in a folder that user can
read (see :func:`cluster.devcluster.services.postgres.owned_run_dir`).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from cluster.devcluster.services.postgres import (
    SUPERUSER,
    PostgreSQL,
    as_owner,
    owned_run_dir,
    pg_binary,
)
from cluster.devcluster.services.process import (
    Service,
    ServiceError,
    ServiceProcess,
    require_binary,
    tail,
    wait_until,
)

PACKAGE = "pgbouncer"
DEFAULT_PORT = 26432


class PgBouncer(Service):
    """One ``pgbouncer`` in transaction pooling mode in front of ``server``.

    :param base_dir: created if missing; holds the log (``pgbouncer.log``).
    :param pool_size: server connections per database and user (``default_pool_size``).
    :param idle_transaction_timeout: seconds after which PgBouncer closes a client that
        sits idle inside a transaction (0: never); what ``ha.session_timeout`` should be.
    """

    def __init__(
        self,
        base_dir: Path,
        server: PostgreSQL,
        *,
        port: int = DEFAULT_PORT,
        pool_size: int = 20,
        max_client_conn: int = 1000,
        idle_transaction_timeout: float = 0,
    ) -> None:
        self.base_dir = Path(base_dir)
        self.server = server
        self.host = server.host
        self.port = port
        self.pool_size = pool_size
        self.max_client_conn = max_client_conn
        self.idle_transaction_timeout = idle_transaction_timeout
        self.log_file = self.base_dir / "pgbouncer.log"
        self._process = ServiceProcess("pgbouncer", self.log_file)
        self._pgbouncer = require_binary("pgbouncer", package=PACKAGE)
        self._psql = pg_binary("psql")
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.run_dir = owned_run_dir(self.base_dir, "pgbouncer")
        self.config_file = self.run_dir / "pgbouncer.ini"

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the server's database through PgBouncer."""
        return self.url_for(self.server.database)

    def url_for(self, database: str) -> str:
        """SQLAlchemy URL of another of the server's databases through PgBouncer."""
        server = self.server
        return (
            f"postgresql+psycopg://{server.user}:{server.password}@{self.host}:{self.port}/"
            f"{database}"
        )

    @property
    def pid(self) -> int | None:
        return self._process.pid

    def start(self, timeout: float = 30.0) -> None:
        """Write the configuration, start PgBouncer, wait until its console answers.

        :raises ServiceError: it exits or does not answer in time (with its log's end).
        """
        self._write_config()
        self._process.start(as_owner([self._pgbouncer, str(self.config_file)]))
        try:
            wait_until(self._ready_or_dead, timeout=timeout, what="PgBouncer start")
        except ServiceError as exc:
            self._process.kill()
            raise ServiceError(f"{exc}\n{self.log_tail()}") from exc
        if not self._process.alive():
            code = self._process.exit_code()
            raise ServiceError(f"pgbouncer exited with {code} at start:\n{self.log_tail()}")

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM by PID (PgBouncer closes every connection at once), SIGKILL after timeout."""
        self._process.stop(timeout)

    def destroy(self) -> None:
        """Stop PgBouncer and delete its configuration."""
        self.stop()
        if self.run_dir != self.base_dir:
            shutil.rmtree(self.run_dir, ignore_errors=True)

    def alive(self) -> bool:
        return self._process.alive()

    def log_tail(self, lines: int = 40) -> str:
        return f"--- {self.log_file} ---\n{tail(self.log_file, lines)}"

    def show(self, what: str) -> list[dict[str, str]]:
        """A ``SHOW`` of the admin console (``POOLS``, ``SERVERS``, ``STATS``, ...) as rows.

        :raises ServiceError: the console refused it.
        """
        done = subprocess.run(
            [
                self._psql, "-X", "-A", "-F", "\t", "-P", "footer=off",
                "-h", self.host, "-p", str(self.port), "-U", SUPERUSER,
                "-d", "pgbouncer", "-c", f"SHOW {what}",
            ],
            capture_output=True, text=True, check=False, timeout=30,
        )  # fmt: skip
        if done.returncode != 0:
            raise ServiceError(f"PgBouncer refused SHOW {what}: {done.stderr.strip()}")
        header, *rows = done.stdout.splitlines()
        names = header.split("\t")
        return [dict(zip(names, row.split("\t"), strict=False)) for row in rows]

    def server_connections(self, database: str) -> int:
        """How many server connections PgBouncer holds to ``database`` right now."""
        states = ("sv_active", "sv_idle", "sv_used", "sv_tested", "sv_login")
        return sum(
            int(pool.get(state, "0"))
            for pool in self.show("POOLS")
            if pool.get("database") == database
            for state in states
        )

    def _write_config(self) -> None:
        userlist = self.run_dir / "userlist.txt"
        userlist.write_text(f'"{self.server.user}" "{self.server.password}"\n"{SUPERUSER}" ""\n')
        self.config_file.write_text(
            "[databases]\n"
            f"* = host={self.server.socket_dir} port={self.server.port}\n"
            "[pgbouncer]\n"
            f"listen_addr = {self.host}\n"
            f"listen_port = {self.port}\n"
            "unix_socket_dir =\n"
            "auth_type = trust\n"
            f"auth_file = {userlist}\n"
            f"admin_users = {SUPERUSER}\n"
            f"stats_users = {self.server.user}\n"
            "pool_mode = transaction\n"
            f"default_pool_size = {self.pool_size}\n"
            f"max_client_conn = {self.max_client_conn}\n"
            f"idle_transaction_timeout = {self.idle_transaction_timeout:g}\n"
            "server_reset_query =\n"
            "log_connections = 0\n"
            "log_disconnections = 0\n"
        )
        for path in (userlist, self.config_file):  # the pgbouncer user reads them
            path.chmod(0o644)

    def _ready_or_dead(self) -> bool:
        if not self._process.alive():
            return True
        try:
            self.show("VERSION")
        except ServiceError:
            return False
        return True
