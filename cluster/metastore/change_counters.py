"""Read the change counters: has anything the DAGs page shows changed since a moment ago?

Triggers created by migration 0002 bump ``change_counter``'s row for ``dag``,
``dag_run`` or ``import_error`` in the same transaction as any insert, delete or
update of a shown column of those tables (the columns are listed in that migration).
A reader that read the counters *before* the rows it shows can reuse what it built
while the counters read the same: a change commits its bump with itself, so an equal
counter means no change to those rows committed since. Nothing is hashed and no time
is compared, so the check is exact; it costs one primary-key read of three rows.

What can go wrong: a counter row missing (someone deleted it by hand) would let
changes go uncounted, so :func:`read_changes` then answers ``None``, which callers
treat as "changed". ``task_instance`` is not counted (its writes are the scheduler's
hot path): a view that shows task instances cannot rely on these counters.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

#: the counted tables, in the order of :func:`read_changes`'s answer
COUNTED = ("dag", "dag_run", "import_error")

#: plain text: its compiled-cache key is the string, so running it walks no tree
_READ = text("SELECT name, changes FROM change_counter")

#: each counted table's number of changes so far, in :data:`COUNTED` order
Changes = tuple[int, ...]


def read_changes(session: Session) -> Changes | None:
    """The current counts of :data:`COUNTED`; ``None`` when a counter row is missing.

    Run it before reading the rows a view shows: a change committed in between then
    only makes the view look changed at the next check, never stale.
    """
    found = {name: int(changes) for name, changes in session.connection().execute(_READ)}
    if any(name not in found for name in COUNTED):
        return None
    return tuple(found[name] for name in COUNTED)
