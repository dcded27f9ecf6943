"""Benchmark scale: many DAG files, a 10,000-task run, many scheduled DAGs, connections.

Each part starts real ``tradewind`` processes against a metastore of its own (see
bench/harness.py) and prints figures; nothing asserts on time. The measuring loop
sleeps between its reads and takes CPU from ``/proc`` for the processes it measures.

* ``dagfiles``: N ten-task DAG files parsed from cold by ``DagProcessor`` in this
  process (wall and CPU, the forked imports included), an unchanged pass, then a real
  scheduler: its own cold pass, its idle CPU, and how long after a file changes the
  metastore holds the new version.
* ``fanout``: a 10,000-task fan-out of Python no-ops on the local executor: tasks/s,
  and per bucket of finished tasks the scheduler's iterations, their mean duration
  (its Prometheus loop histogram) and its CPU per iteration and per task, so growth
  with the run's size shows; then the grid page's time in a real webserver.
* ``hourly``: chain_50 on an idle scheduler, then N hourly DAGs (catchup off) are
  added, their first runs finish, and chain_50 runs again beside them.
* ``connections``: metastore connections per process (scheduler, pool processes,
  webserver workers, Celery worker) during a fan-out and when idle after it.

    python bench/scale.py                                 # every part, SQLite and MariaDB
    python bench/scale.py --parts dagfiles --files 1000 --db sqlite
    python bench/scale.py --parts fanout --tasks 10000 --db mariadb
    python bench/scale.py --parts connections --db mariadb,postgres
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import databases_from, metastore
from scale_parts import PARTS, Options


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", default="both", help="sqlite, mariadb, postgres; both; all")
    parser.add_argument("--parts", default=",".join(PARTS), help=",".join(PARTS))
    parser.add_argument("--files", type=int, default=1000, help="DAG files (dagfiles, hourly)")
    parser.add_argument("--tasks", type=int, default=10_000, help="fan-out width")
    parser.add_argument("--parallelism", type=int, default=32)
    parser.add_argument("--buckets", type=int, default=10, help="fan-out buckets")
    args = parser.parse_args()
    parts = [p for p in args.parts.split(",") if p]
    unknown = set(parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown parts: {', '.join(sorted(unknown))}")
    options = Options(args.files, args.tasks, args.parallelism, args.buckets)
    for db in databases_from(args.db):
        for part in parts:
            if part == "connections" and db == "sqlite":
                continue  # SQLite has no connections to count
            with (
                tempfile.TemporaryDirectory(prefix=f"tw-scale-{part}-") as tmp,
                metastore(db, Path(tmp)) as store,
            ):
                print(f"\n== {part} on {db} ==", flush=True)
                started = time.perf_counter()
                PARTS[part](store, Path(tmp), options)
                print(f"({part} on {db}: {time.perf_counter() - started:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
