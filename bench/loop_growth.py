"""bench/loop.py's per-iteration cost against the run's progress: is it flat?

A run whose iterations cost in proportion to its size (a query that sorts the whole
backlog, a count of every instance) has a total cost that grows with the square of its
size; in a fan-out that shows as the first iterations (10,000 scheduled rows) costing
more than the last ones (a few left). :class:`Growth` splits a run into buckets of
finished tasks and prints, per bucket, the iterations, their mean CPU and, with
``--rows``, the mean work the metastore did per iteration:

* SQLite: virtual-machine instructions (a progress handler counts every 1,000), the
  closest SQLite has to rows touched;
* MariaDB: ``Rows_read`` (rows read from tables, temporary ones aside, whatever the
  statement returned), read from the private server's global status after each
  iteration (the benchmark is its only client; the read itself reads no InnoDB row);
* PostgreSQL: not counted (its statistics reach the views late); see the plans in
  tests/integration/test_metastore_postgres.py.

Counting SQLite's instructions costs CPU, so ``--rows`` figures and CPU figures come
from separate runs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, event, text

#: SQLite's progress handler is called every this many instructions
SQLITE_STEP = 1000


class WorkCounter:
    """Metastore work since the start: instructions (SQLite) or rows read (MariaDB)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._steps = 0
        self.unit = {"sqlite": "kVM ops", "mysql": "rows"}.get(engine.dialect.name, "")
        if engine.dialect.name == "sqlite":
            engine.dispose()  # the handler is set on each connection as it opens
            event.listen(engine, "connect", self._on_connect)

    def _on_connect(self, dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.set_progress_handler(self._step, SQLITE_STEP)

    def _step(self) -> int:
        self._steps += 1
        return 0  # go on

    def read(self) -> float:
        if self.unit == "kVM ops":
            return float(self._steps)
        if self.unit == "rows":
            with self._engine.connect() as connection:
                row = connection.execute(text("SHOW GLOBAL STATUS LIKE 'Rows_read'")).one()
            return float(row[1])
        return 0.0


@dataclass
class Bucket:
    iterations: int = 0
    cpu: float = 0.0
    work: float = 0.0


@dataclass
class Growth:
    """Per-iteration cost by bucket of finished tasks (``buckets`` of ``total``)."""

    total: int
    buckets: int
    counter: WorkCounter | None = None
    _rows: list[Bucket] = field(default_factory=list)
    _cpu: float = 0.0
    _work: float = 0.0

    def __post_init__(self) -> None:
        self._rows = [Bucket() for _ in range(self.buckets)]
        self._cpu = _cpu()
        self._work = self.counter.read() if self.counter else 0.0

    def iterated(self, finished: int) -> None:
        """Account the iteration that just ended; ``finished`` tasks are done so far."""
        index = min(max(finished - 1, 0) * self.buckets // max(self.total, 1), self.buckets - 1)
        bucket = self._rows[index]
        now = _cpu()
        bucket.iterations += 1
        bucket.cpu += now - self._cpu
        self._cpu = now
        if self.counter:
            work = self.counter.read()
            bucket.work += work - self._work
            self._work = work

    def print(self, shape: str) -> None:
        unit = f"{self.counter.unit}/it" if self.counter else ""
        print(f"  {shape}: per-iteration cost by tasks finished")
        print(f"  {'finished':>14}{'iterations':>12}{'CPU ms/it':>11}{unit:>14}")
        step = self.total / self.buckets
        for i, bucket in enumerate(self._rows):
            span = f"{int(i * step)}-{int((i + 1) * step)}"
            per = bucket.iterations or 1
            work = f"{bucket.work / per:>14.0f}" if self.counter else ""
            print(f"  {span:>14}{bucket.iterations:>12}{bucket.cpu * 1000 / per:>11.2f}{work}")


def _cpu() -> float:
    times = os.times()
    return times.user + times.system
