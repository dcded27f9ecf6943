"""Running DAG-level callbacks (``on_success_callback``, ``on_failure_callback``).

The scheduler only records that a callback is due (``callback_request``, written in
the fenced transaction that ends the run); DAG code never runs in its loop. This
runner, called by the DAG processor's pass in the scheduler process, claims each
request with a compare-and-set, imports the DAG file in a forked child with a time
limit (as :mod:`cluster.dagfiles.importer` does), calls the callbacks with Airflow's
context (a task instance's context of the run, plus ``reason``), and appends what
happened, the callbacks' own output and logs included, to
``<base_log_folder>/dag_id=…/run_id=…/callbacks.log``.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import multiprocessing
import os
import socket
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from cluster.dagfiles.importer import dags_in_module, load_module
from cluster.dagfiles.sla_notify import CallbackOutcome, SlaMissInfo, notify
from cluster.metastore import callbacks, slas
from cluster.metastore.engine import transaction
from cluster.metastore.models import Dag, DagRun, TaskInstance
from cluster.sdk import DAG
from cluster.sdk.context import RunInfo, build_context
from cluster.sdk.testing import InMemoryTaskInstance

log = logging.getLogger(__name__)
_FORK = multiprocessing.get_context("fork")


@dataclass(frozen=True)
class EndedRun(RunInfo):
    """``context["dag_run"]`` of a callback: the run, with how it ended."""

    state: str = "success"
    end_date: datetime | None = None


@dataclass(frozen=True)
class CallbackJob:
    """Everything the child needs: no metastore access happens in it.

    A run's callback has ``run``; an ``sla_miss_callback`` has the misses to report
    and the instances blocking them instead.
    """

    request: callbacks.ClaimedCallback
    fileloc: str
    run: EndedRun | None
    task_id: str | None
    log_file: Path
    misses: tuple[SlaMissInfo, ...] = ()
    blocking: tuple[tuple[str, datetime], ...] = ()
    base_url: str = ""


def callback_log(base: Path, dag_id: str, run_id: str) -> Path:
    """Where a run's DAG-level callbacks log (beside its tasks' folders)."""
    return base / f"dag_id={dag_id}" / f"run_id={run_id}" / "callbacks.log"


class CallbackRunner:
    """Claims and runs pending DAG-level callback requests, one child each."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        log_folder: Path,
        timeout: float,
        host: str | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        base_url: str = "http://localhost:8080",
    ) -> None:
        self._sessions = sessions
        self._base_url = base_url
        self._log_folder = log_folder
        self._timeout = timeout
        self._host = host or f"{socket.gethostname()}:{os.getpid()}"
        self._clock = clock

    def run_pending(self) -> int:
        """Run every pending request this runner wins; returns how many it ran."""
        ran = 0
        for request_id in transaction(self._sessions, callbacks.pending_ids):
            job = transaction(self._sessions, functools.partial(self._claim, request_id=request_id))
            if job is None:
                continue
            outcome = run_in_child(job, timeout=self._timeout)
            said = "succeeded" if outcome.ok else "failed"
            _append(job.log_file, f"{job.request.kind} {said}: {outcome.message}")
            transaction(self._sessions, functools.partial(self._close, job=job, outcome=outcome))
            ran += 1
        return ran

    def _close(self, session: Session, *, job: CallbackJob, outcome: CallbackOutcome) -> None:
        """Close the request; for SLA misses, record what Airflow records of the report."""
        now = self._clock()
        callbacks.finish(session, job.request.id, ok=outcome.ok, message=outcome.message, now=now)
        if outcome.notified:
            reported = [
                slas.Miss(m.dag_id, m.task_id, m.execution_date, m.timestamp) for m in job.misses
            ]
            slas.mark_notified(
                session, reported, email_sent=outcome.email_sent, notification_sent=True
            )

    def _claim(self, session: Session, *, request_id: int) -> CallbackJob | None:
        claimed = callbacks.claim(session, request_id, host=self._host, now=self._clock())
        if claimed is None:
            return None
        if claimed.kind == slas.SLA_CALLBACK:
            return self._sla_job(session, claimed)
        fileloc = session.scalar(select(Dag.fileloc).where(Dag.dag_id == claimed.dag_id))
        run = session.scalar(
            select(DagRun).where(DagRun.dag_id == claimed.dag_id, DagRun.run_id == claimed.run_id)
        )
        if fileloc is None or run is None:
            callbacks.finish(
                session, request_id, ok=False, message="DAG or run deleted", now=self._clock()
            )
            return None
        return CallbackJob(
            request=claimed,
            fileloc=fileloc,
            run=_ended_run(run, self._clock()),
            task_id=_task_for(session, claimed),
            log_file=callback_log(self._log_folder, claimed.dag_id, claimed.run_id),
        )

    def _sla_job(self, session: Session, claimed: callbacks.ClaimedCallback) -> CallbackJob | None:
        fileloc = session.scalar(select(Dag.fileloc).where(Dag.dag_id == claimed.dag_id))
        if fileloc is None:
            callbacks.finish(
                session, claimed.id, ok=False, message="DAG deleted", now=self._clock()
            )
            return None
        misses = slas.unnotified(session, claimed.dag_id)
        dates = sorted({m.execution_date for m in misses})
        return CallbackJob(
            request=claimed,
            fileloc=fileloc,
            run=None,
            task_id=None,
            log_file=sla_log(self._log_folder, claimed.dag_id),
            misses=tuple(SlaMissInfo(**m.to_dict()) for m in misses),
            blocking=tuple(slas.blocking(session, claimed.dag_id, dates)),
            base_url=self._base_url,
        )


def sla_log(base: Path, dag_id: str) -> Path:
    """Where a DAG's SLA miss reports log."""
    return base / f"dag_id={dag_id}" / "sla_miss_callbacks.log"


def _ended_run(run: DagRun, now: datetime) -> EndedRun:
    when = run.logical_date or run.queued_at or now
    return EndedRun(
        dag_id=run.dag_id,
        run_id=run.run_id,
        logical_date=when,
        data_interval_start=run.data_interval_start or when,
        data_interval_end=run.data_interval_end or when,
        run_type=run.run_type,
        conf=dict(run.conf or {}),
        start_date=run.start_date,
        state=str(run.state),
        end_date=run.end_date,
    )


def _task_for(session: Session, request: callbacks.ClaimedCallback) -> str | None:
    """Airflow's choice of ``context["ti"]``: the last failed instance for a failure."""
    query = select(TaskInstance.task_id).where(
        TaskInstance.dag_id == request.dag_id, TaskInstance.run_id == request.run_id
    )
    if request.kind == "on_failure_callback":
        failed = query.where(TaskInstance.state == "failed").order_by(TaskInstance.end_date)
        found = session.scalars(failed).all()
        if found:
            return found[-1]
    return session.scalars(query.order_by(TaskInstance.task_id)).first()


def run_in_child(job: CallbackJob, *, timeout: float) -> CallbackOutcome:
    """Call the callbacks of ``job`` in a forked child; kill it after ``timeout`` s."""
    job.log_file.parent.mkdir(parents=True, exist_ok=True)
    _append(job.log_file, f"{job.request.kind} (reason: {job.request.reason}) starts")
    receiver, sender = _FORK.Pipe(duplex=False)
    child = _FORK.Process(target=_child_main, args=(job, sender), daemon=True)
    child.start()
    sender.close()
    try:
        answer = receiver.recv() if receiver.poll(timeout) else None
    except (EOFError, OSError):
        answer = None
    finally:
        receiver.close()
        if child.is_alive():
            child.kill()
        child.join(5)
    if answer is None:
        code = child.exitcode
        if code is None or code < 0:
            return CallbackOutcome(
                False, f"did not finish within {timeout:g} s (killed)", False, False
            )
        return CallbackOutcome(False, f"the callback exited with code {code}", False, False)
    return CallbackOutcome(bool(answer[0]), str(answer[1]), bool(answer[2]), bool(answer[3]))


def _child_main(job: CallbackJob, sender: Connection) -> None:
    try:
        with open(job.log_file, "a") as out, _captured(out):
            answer = _call(job)
        sender.send(answer)  # after the log is flushed: the parent may kill us once it reads
    except BaseException as exc:  # reported to the parent, which logs it
        sender.send((False, f"{type(exc).__name__}: {exc}", False, False))
    finally:
        sender.close()
        os._exit(0)


def _call(job: CallbackJob) -> tuple[bool, str, bool, bool]:
    dag = _find_dag(job)
    if job.run is None:
        told = notify(dag, job.misses, job.blocking, base_url=job.base_url)
        return told.ok, told.message, told.notified, told.email_sent
    found = getattr(dag, job.request.kind, None)
    if found is None:
        return True, f"DAG '{dag.dag_id}' has no {job.request.kind}", False, False
    task = dag.get_task(job.task_id) if job.task_id in dag.task_dict else dag.tasks[-1]
    ti = InMemoryTaskInstance(dag.dag_id, task.task_id, job.run.run_id)
    context = build_context(dag=dag, task=task, ti=ti, dag_run=job.run)
    context["reason"] = job.request.reason
    errors = []
    for callback in found if isinstance(found, list | tuple) else [found]:
        try:
            callback(context)
        except Exception as exc:
            logging.getLogger("tradewind.callbacks").error(
                "%s failed:\n%s", job.request.kind, traceback.format_exc()
            )
            errors.append(f"{type(exc).__name__}: {exc}")
    return (not errors, "; ".join(errors) or "ok", False, False)


def _find_dag(job: CallbackJob) -> DAG:
    path = Path(job.fileloc)
    for dag in dags_in_module(load_module(path, search_path=path.parent)):
        if dag.dag_id == job.request.dag_id:
            return dag
    raise LookupError(f"{job.fileloc} no longer defines DAG '{job.request.dag_id}'")


@contextlib.contextmanager
def _captured(out: Any) -> Any:
    """The callback's prints and logs go to the callbacks log."""
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("[%(asctime)s] %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            yield
        finally:
            root.removeHandler(handler)
            out.flush()


def _append(path: Path, line: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fh.write(f"[{datetime.now(UTC).isoformat(timespec='seconds')}] {line}\n")
