"""Which process holds which metastore connection: the server's list of clients, each
client's TCP port mapped to its PID through ``/proc`` (tests and ``bench/scale.py``).

MariaDB lists its clients in ``information_schema.processlist`` (``HOST`` is
``address:port``), PostgreSQL in ``pg_stat_activity`` (``client_port``). A client's
local port is found in ``/proc/net/tcp`` as a socket inode, and the inode among the
open files of a process under ``/proc/PID/fd``. Only loopback servers on this machine.
"""

from __future__ import annotations

import contextlib
import os
from collections import Counter
from pathlib import Path

from sqlalchemy import Engine, text

#: MariaDB: the clients of other sessions (this query's own connection left out)
_MARIADB = (
    "SELECT host FROM information_schema.processlist "
    "WHERE id <> CONNECTION_ID() AND command <> 'Daemon' AND host LIKE '%:%'"
)
#: PostgreSQL: client backends over TCP, this one left out
_POSTGRES = (
    "SELECT client_port FROM pg_stat_activity "
    "WHERE pid <> pg_backend_pid() AND backend_type = 'client backend' "
    "AND client_port IS NOT NULL"
)


def client_ports(engine: Engine) -> list[int]:
    """The local TCP port of every other client the server holds a connection for."""
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            return [int(p) for (p,) in connection.execute(text(_POSTGRES))]
        return [int(h.rsplit(":", 1)[1]) for (h,) in connection.execute(text(_MARIADB))]


def socket_inodes_by_port() -> dict[int, int]:
    """``local port → socket inode`` of this machine's TCP sockets (IPv4 and IPv6)."""
    found: dict[int, int] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                port = int(fields[1].rsplit(":", 1)[1], 16)
                found.setdefault(port, int(fields[9]))
    return found


def pid_by_inode() -> dict[int, int]:
    """``socket inode → PID`` of every process this user may look into."""
    owners: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in os.scandir(entry / "fd"):
                with contextlib.suppress(OSError):
                    target = os.readlink(fd.path)
                    if target.startswith("socket:["):
                        owners.setdefault(int(target[8:-1]), int(entry.name))
    return owners


def connections_by_pid(engine: Engine) -> Counter[int]:
    """How many connections the metastore server holds for each client process; a
    client whose process could not be found counts under PID 0."""
    ports = client_ports(engine)
    inodes = socket_inodes_by_port()
    owners = pid_by_inode()
    return Counter(owners.get(inodes.get(port, -1), 0) for port in ports)
