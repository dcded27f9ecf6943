"""One migration from an Airflow 2.x metastore into Tradewind's, as a sequence of steps.

Definitions (variables, connections, pools, users) go in one transaction; then each
DAG's runs in batches of :data:`RUNS_PER_BATCH`, each batch in its own transaction with
every row under its runs; the DAG pause states last, so that the scheduler, which may
already be running, re-plans each DAG only once its runs are all in (the next run
follows the latest migrated scheduled run: nothing Airflow ran is run again, no
interval is skipped). ``write=False`` (``--dry-run``) goes through the same steps and
counts, and writes nothing.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.fernet import MultiFernet
from sqlalchemy.orm import Session

from cluster.airflow_migration import definitions, history
from cluster.airflow_migration.report import Report
from cluster.airflow_migration.source import AirflowMetastore, chunks
from cluster.metastore.engine import SessionFactory, transaction

RUNS_PER_BATCH = 200

#: ``progress(step, done, total)``: called as the migration goes on
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Options:
    airflow_fernet: MultiFernet
    fernet: MultiFernet
    include_xcom: bool = False
    dry_run: bool = False


def migrate(
    source: AirflowMetastore,
    sessions: SessionFactory,
    options: Options,
    progress: Progress | None = None,
) -> Report:
    """Copy everything of ``source`` that Tradewind lacks; return what was done."""
    report = Report()
    tick = progress or (lambda step, done, total: None)
    write = not options.dry_run
    keys = (options.airflow_fernet, options.fernet)

    def copy_definitions(session: Session) -> None:
        definitions.copy_variables(source, session, keys, report, write=write)
        definitions.copy_connections(source, session, keys, report, write=write)
        definitions.copy_pools(source, session, report, write=write)
        definitions.copy_users(source, session, report, write=write)

    tick("variables, connections, pools, users", 0, 1)
    transaction(sessions, copy_definitions, retries=0)
    tick("variables, connections, pools, users", 1, 1)
    _copy_history(source, sessions, options, report, tick)
    transaction(
        sessions, lambda s: definitions.copy_dags(source, s, report, write=write), retries=0
    )
    return report


def _copy_history(
    source: AirflowMetastore,
    sessions: SessionFactory,
    options: Options,
    report: Report,
    tick: Progress,
) -> None:
    run_notes = {n["dag_run_id"]: n["content"] for n in source.rows("dag_run_note")}
    dag_ids = sorted(source.column("dag_run", "dag_id"))
    for done, dag_id in enumerate(dag_ids):
        tick("DAG runs", done, len(dag_ids))
        runs = sorted(source.rows("dag_run", dag_id=dag_id), key=lambda r: r["id"])
        for batch in chunks(runs, RUNS_PER_BATCH):
            copy = functools.partial(history.copy_runs, source, runs=list(batch),
                                     run_notes=run_notes, report=report,
                                     include_xcom=options.include_xcom,
                                     write=not options.dry_run)  # fmt: skip
            transaction(sessions, copy, retries=0)
    tick("DAG runs", len(dag_ids), len(dag_ids))
