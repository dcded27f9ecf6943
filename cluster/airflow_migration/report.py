"""What a migration found, added and left: per table counts and the notes for the operator."""

from __future__ import annotations

from dataclasses import dataclass, field

#: the tables of a report, in the order they are copied and shown
TABLES = (
    "dags",
    "dag_runs",
    "task_instances",
    "tries",
    "notes",
    "task_maps",
    "xcoms",
    "variables",
    "connections",
    "pools",
    "users",
)


@dataclass
class Count:
    """One table: rows in Airflow, rows added, rows Tradewind had already (kept as they
    are: a second run adds nothing), rows that cannot be copied (said in the notes)."""

    found: int = 0
    added: int = 0
    present: int = 0
    skipped: int = 0


@dataclass
class Report:
    counts: dict[str, Count] = field(default_factory=lambda: {t: Count() for t in TABLES})
    #: what the operator must know or do, one line each
    notes: list[str] = field(default_factory=list)
    #: users whose password cannot be verified by Tradewind: to invite again
    reinvite: list[str] = field(default_factory=list)

    def __getitem__(self, table: str) -> Count:
        return self.counts[table]

    def rows(self) -> list[dict[str, object]]:
        return [
            {"table": t, "airflow": c.found, "added": c.added, "present": c.present,
             "skipped": c.skipped}
            for t, c in self.counts.items()
        ]  # fmt: skip
