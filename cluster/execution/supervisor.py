"""Running one try: claim, fork the task child, heartbeat, enforce limits, record.

The supervisor lives in a long-lived worker process (a local pool process or a Celery
worker) and owns every metastore write of the try. It heartbeats while the child runs;
when the heartbeat finds the instance set to another state (cleared or marked by a
user, reaped as a zombie) it kills the child's process group and records nothing.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from cluster.config import Settings
from cluster.dagfiles.serialized import SerializedTask
from cluster.errors import TradewindError
from cluster.execution import recording
from cluster.execution.child import (
    Job,
    SpareChild,
    discard,
    fork_spare,
    start_job,
    stop_on_sigterm,
    timeout_seconds,
)
from cluster.execution.claimed import execute_claimed
from cluster.execution.dagbag import DagBag
from cluster.execution.handle import SessionFactory
from cluster.execution.logs import announce_try, append_line
from cluster.execution.outcome import TryOutcome
from cluster.logserver.paths import log_path
from cluster.messages import TaskMessage
from cluster.metastore.engine import transaction
from cluster.metastore.secrets import make_fernet
from cluster.sdk import DAG, BaseOperator
from cluster.states import TaskState

log = logging.getLogger(__name__)

#: seconds a killed child gets between SIGTERM and SIGKILL
KILL_GRACE = 5.0


@dataclass(frozen=True)
class TryResult:
    """What the supervisor did with a message: ``state`` is ``None`` when it ran nothing."""

    message: TaskMessage
    state: TaskState | None


def utcnow() -> datetime:
    return datetime.now(UTC)


#: called after a try's end state was recorded (e.g. to publish a "finished" event)
OnRecorded = Callable[[TaskMessage, TaskState], object]


class Supervisor:
    """Runs tries in this process, one at a time."""

    def __init__(
        self,
        settings: Settings,
        *,
        sessions: sessionmaker[Session],
        child_sessions: SessionFactory,
        dagbag: DagBag,
        clock: Callable[[], datetime] = utcnow,
        on_recorded: OnRecorded | None = None,
    ) -> None:
        self._settings = settings
        self._on_recorded = on_recorded
        self._sessions = sessions
        self._child_sessions = child_sessions
        self._dagbag = dagbag
        self._clock = clock
        self._hostname = settings.core.hostname
        self._fernet = make_fernet(settings.core.fernet_key)
        self._spare: SpareChild | None = None

    def run(self, message: TaskMessage) -> TryResult:
        """Run one try to its end; never raises for anything the task does."""
        claimed = transaction(
            self._sessions,
            lambda s: recording.claim(
                s, message, hostname=self._hostname, pid=os.getpid(), now=self._clock()
            ),
        )
        if claimed is None:
            log.info("not claimed (already taken or no longer queued): %s", message)
            return TryResult(message, None)
        path = self._log_path(message)
        announce_try(path, message, hostname=self._hostname)
        try:
            _, task, spec = self._dagbag.task(message.dag_id, message.fingerprint, message.task_id)
        except Exception as exc:  # as the pool's runner: whatever stops the load fails the try
            outcome = TryOutcome.crashed(f"cannot load the task: {exc}")
            append_line(path, outcome.message or "")
            return self._record(
                message, claimed, outcome, SerializedTask(message.task_id, "?"), path
            )
        if spec.extra.get("empty"):
            outcome = TryOutcome(state="success")
        else:
            outcome = self._run_child(task, message, claimed, path)
        return self._record(message, claimed, outcome, spec, path)

    def prepare(self) -> None:
        """While idle, fork the spare child the next try will run in."""
        spare = self._spare
        if spare is not None and spare.generation == self._dagbag.generation:
            return
        if spare is not None:
            discard(spare)
        self._spare = fork_spare(self._run_job, generation=self._dagbag.generation)

    def _log_path(self, message: TaskMessage) -> Path:
        return log_path(
            self._settings.logging.base_log_folder,
            dag_id=message.dag_id,
            run_id=message.run_id,
            task_id=message.task_id,
            try_number=message.try_number,
            map_index=message.map_index,
        )

    def _run_child(
        self, task: BaseOperator, message: TaskMessage, claimed: recording.ClaimedTry, path: Path
    ) -> TryOutcome:
        timeout = timeout_seconds(task)
        job = Job(message.dag_id, message.fingerprint, message.task_id, claimed, path, timeout)
        self.prepare()  # a spare of the current DAG generation, forked now if needed
        spare, self._spare = self._spare, None
        assert spare is not None
        pid, read_fd = start_job(spare, job)
        return self._watch(pid, read_fd, claimed, timeout, path)

    def _run_job(self, job: Job) -> TryOutcome:
        """Runs in the spare child: the DAG is in the cache it inherited."""
        dag = self._dagbag.get(job.dag_id, job.fingerprint)
        task = dag.get_task(job.task_id)
        stop_on_sigterm(task)
        return self._child_target(dag, task, job.claimed, job.timeout)

    def _child_target(
        self, dag: DAG, task: BaseOperator, claimed: recording.ClaimedTry, timeout: float | None
    ) -> TryOutcome:
        """Runs in the forked child."""
        return execute_claimed(
            dag,
            task,
            claimed,
            hostname=self._hostname,
            sessions=self._child_sessions,
            fernet=self._fernet,
            timeout=timeout,
            xcom_max_size=self._settings.core.xcom_max_size,
        )

    def _watch(
        self,
        pid: int,
        read_fd: int,
        claimed: recording.ClaimedTry,
        timeout: float | None,
        path: Path,
    ) -> TryOutcome:
        interval = self._settings.scheduler.heartbeat_interval
        hard_deadline = time.monotonic() + timeout + KILL_GRACE if timeout else None
        chunks: list[bytes] = []
        next_beat = time.monotonic() + interval
        try:
            while True:
                wait = max(0.0, next_beat - time.monotonic())
                ready, _, _ = select.select([read_fd], [], [], wait)
                if ready:
                    data = os.read(read_fd, 65536)
                    if not data:
                        break
                    chunks.append(data)
                    continue
                next_beat = time.monotonic() + interval
                if not self._heartbeat(claimed):
                    append_line(
                        path, "State of this instance was changed externally: killing the task"
                    )
                    _kill_group(pid)
                    _reap(pid)
                    return TryOutcome(state="externally_changed")
                if hard_deadline and time.monotonic() > hard_deadline:
                    append_line(path, f"Task did not stop after its {timeout:g} s timeout: killed")
                    _kill_group(pid)
        finally:
            os.close(read_fd)
        status = _reap(pid)
        if chunks:
            return TryOutcome.from_json(b"".join(chunks).decode())
        return TryOutcome.crashed(_describe_exit(status, timeout, hard_deadline))

    def _heartbeat(self, claimed: recording.ClaimedTry) -> bool:
        try:
            return transaction(
                self._sessions,
                lambda s: recording.heartbeat(s, claimed, now=self._clock()),
                retries=1,
            )
        except TradewindError:
            log.warning("heartbeat failed; the metastore may be down", exc_info=True)
            return True

    def _record(
        self,
        message: TaskMessage,
        claimed: recording.ClaimedTry,
        outcome: TryOutcome,
        spec: SerializedTask,
        path: Path,
    ) -> TryResult:
        if outcome.state == "externally_changed":
            return TryResult(message, None)
        now = self._clock()
        state = transaction(
            self._sessions,
            lambda s: recording.record(
                s, claimed, outcome, spec, hostname=self._hostname, pid=os.getpid(), now=now
            ),
            retries=20,
        )
        if state is None:
            append_line(
                path, "This try lost its claim (zombie reaped or state changed); nothing recorded"
            )
        else:
            detail = f": {outcome.message}" if outcome.message else ""
            append_line(path, f"Marking task as {state.upper()}{detail}")
            self._notify(message, state)
        return TryResult(message, state)

    def _notify(self, message: TaskMessage, state: TaskState) -> None:
        """Tell ``on_recorded``; its failure is logged, never the try's problem."""
        if self._on_recorded is None:
            return
        try:
            self._on_recorded(message, state)
        except Exception:
            log.warning("on_recorded hook failed for %s", message, exc_info=True)


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + KILL_GRACE
    while time.monotonic() < deadline:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _reap(pid: int) -> int:
    try:
        _, status = os.waitpid(pid, 0)
    except ChildProcessError:
        return 0
    return status


def _describe_exit(status: int, timeout: float | None, hard_deadline: float | None) -> str:
    if hard_deadline and time.monotonic() > hard_deadline:
        return f"Task timed out after {timeout:g} s and was killed"
    if os.WIFSIGNALED(status):
        name = signal.Signals(os.WTERMSIG(status)).name
        return f"Task process was killed by signal {name}"
    return f"Task process exited with code {os.waitstatus_to_exitcode(status)} before reporting"
