"""The private database servers of tests and benchmarks: one type, one list of test
parameters, and one way to make a server of either kind."""

from __future__ import annotations

from pathlib import Path

import pytest

from cluster.devcluster.services.mariadb import MariaDB
from cluster.devcluster.services.ports import free_port
from cluster.devcluster.services.postgres import PostgreSQL

#: a private database server: both kinds create and drop databases, stop, start and
#: are destroyed alike
DatabaseServer = MariaDB | PostgreSQL
#: the kinds of server, by the name of their test fixture
KINDS = ("mariadb", "postgres")
#: the parameters of a test that runs once on each kind (the name of its fixture)
SERVER_KINDS = [
    pytest.param("mariadb", marks=pytest.mark.mariadb),
    pytest.param("postgres", marks=pytest.mark.postgres),
]


def private_server(kind: str, base_dir: Path, *, large: bool = False) -> DatabaseServer:
    """A MariaDB or PostgreSQL under ``base_dir`` on a free port, not started yet.

    Without fsync: commits survive a crash of the server (what tests inject), not of
    the machine. ``large`` sizes it like a small production server, for benchmarks
    (a 4 MB redo log makes InnoDB checkpoint constantly).

    :raises ServiceError: the server's binaries are not installed.
    :raises ValueError: an unknown ``kind``.
    """
    if kind == "mariadb":
        if large:
            return MariaDB(
                base_dir, port=free_port(), fsync=False, buffer_pool_size="512M",
                log_file_size="256M",
            )  # fmt: skip
        return MariaDB(base_dir, port=free_port(), fsync=False)
    if kind == "postgres":
        shared_buffers = "512MB" if large else "128MB"
        return PostgreSQL(base_dir, port=free_port(), fsync=False, shared_buffers=shared_buffers)
    raise ValueError(f"unknown database server {kind!r} (one of {', '.join(KINDS)})")
