"""The runner of the local process pool: tries run in the worker, the metastore work is batched.

The local executor's process (the scheduler) keeps the metastore side of every try
in a :class:`PoolBook`: it claims the tries it hands out several at a time (one
compare-and-set per try, one commit), heartbeats every running try in one
transaction, and records the tries that ended in one transaction. Its worker
processes only run user code (:class:`PoolRunner`), in-process (see
:mod:`cluster.execution.isolation`), and touch the metastore only when a task reads
XComs, Variables or connections, or to record their last try if the scheduler died.
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from cryptography.fernet import MultiFernet
from sqlalchemy.orm import Session, sessionmaker

from cluster.config import Settings
from cluster.dagfiles.environment import prepare_user_code
from cluster.dagfiles.serialized import SerializedTask
from cluster.errors import TradewindError
from cluster.execution import recording
from cluster.execution.claimed import execute_claimed
from cluster.execution.dagbag import DagBag, version_files
from cluster.execution.deferring import record_ends
from cluster.execution.execute import timeout_seconds
from cluster.execution.handle import SessionFactory
from cluster.execution.isolation import isolated_try, settle_log_level
from cluster.execution.logs import announcement, append_line, open_try_log, write_line
from cluster.execution.outcome import TryOutcome
from cluster.logserver.paths import log_path
from cluster.messages import TaskMessage
from cluster.metastore.engine import transaction
from cluster.metastore.secrets import make_fernet
from cluster.metastore.transitions import moves_transaction
from cluster.sdk import DAG, BaseOperator
from cluster.sensors.base import BaseSensorOperator
from cluster.states import TaskState

log = logging.getLogger(__name__)

#: DAG versions whose file a book remembers before it starts over
MAX_KNOWN_FILES = 10_000
#: how often a try's record is attempted before the executor gives up (the zombie
#: reaper then ends it); the metastore may be restarting
RECORD_RETRIES = 20


def utcnow() -> datetime:
    return datetime.now(UTC)


def try_log(settings: Settings, message: TaskMessage) -> Path:
    """The log file of the try ``message`` names."""
    return log_path(
        settings.logging.base_log_folder,
        dag_id=message.dag_id,
        run_id=message.run_id,
        task_id=message.task_id,
        try_number=message.try_number,
        map_index=message.map_index,
    )


class PoolBook:
    """The metastore side of the pool's tries, in the executor's process.

    :param sessions: built in the executor's process (never inherited over a fork).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        sessions: sessionmaker[Session],
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._settings = settings
        self._sessions = sessions
        self._clock = clock
        self._hostname = settings.core.hostname
        self.heartbeat_interval = settings.scheduler.heartbeat_interval
        self._cipher: MultiFernet | None = None
        #: the file of each DAG version claimed here, given to the pool process with each
        #: claim: a process that imports a version then opens no metastore connection
        #: just to locate it (a cold process paid about 15 ms of CPU for that). ``None``:
        #: the metastore no longer serialized that version when it was first claimed; its
        #: tries locate the DAG themselves (and fail on the version), as without the cache
        self._files: dict[tuple[str, str], str | None] = {}

    def claim(
        self, assignments: Sequence[tuple[TaskMessage, int]]
    ) -> dict[TaskMessage, recording.ClaimedTry]:
        """Claim ``(message, worker pid)`` pairs in one transaction; returns the tries won."""
        now = self._clock()
        claimed = moves_transaction(
            self._sessions,
            lambda s, optimistic: recording.claim_many(
                s,
                assignments,
                hostname=self._hostname,
                now=now,
                optimistic=optimistic,
                files=self._files_of(s, assignments),
            ),
        )
        for message, _ in assignments:
            if message not in claimed:
                log.info("not claimed (already taken or no longer queued): %s", message)
        return claimed

    def _files_of(
        self, session: Session, assignments: Sequence[tuple[TaskMessage, int]]
    ) -> dict[tuple[str, str], str | None]:
        """The known files of DAG versions, with those of ``assignments`` looked up once
        (a version no longer serialized too: it is not queried again with every claim)."""
        new = {(m.dag_id, m.fingerprint) for m, _ in assignments} - self._files.keys()
        if new:
            if len(self._files) > MAX_KNOWN_FILES:
                self._files.clear()
            found = version_files(session, new)
            self._files.update({version: found.get(version) for version in new})
        return self._files

    def record(self, tries: Sequence[recording.FinishedTry]) -> list[TaskState | None]:
        """Record ended tries in one transaction, and say so in each try's log."""
        states = moves_transaction(
            self._sessions,
            lambda s, optimistic: record_ends(s, tries, fernet=self._fernet, optimistic=optimistic),
            retries=RECORD_RETRIES,
        )
        for finished, state in zip(tries, states, strict=True):
            if state is None:  # the worker already said what it meant to record
                self._say_recorded(finished.claimed, state, finished.outcome.message)
        return states

    def _fernet(self) -> MultiFernet:
        """The cluster's cipher, built on first use: only deferring tries need it."""
        if self._cipher is None:
            self._cipher = make_fernet(self._settings.core.fernet_key)
        return self._cipher

    def record_lost(
        self, claimed: recording.ClaimedTry, reason: str, *, pid: int
    ) -> TaskState | None:
        """Record a try whose worker died (or was killed) before it reported."""
        path = self._path(claimed)
        append_line(path, reason)
        now = self._clock()
        state = transaction(
            self._sessions,
            lambda s: recording.record_lost(
                s, claimed, reason, hostname=self._hostname, pid=pid, now=now
            ),
            retries=RECORD_RETRIES,
        )
        self._say_recorded(claimed, state, reason)
        return state

    def heartbeat(self, tries: Sequence[recording.ClaimedTry]) -> list[bool]:
        """Heartbeat running tries in one transaction; ``False`` where one lost its claim.

        A metastore that cannot be reached counts as alive: the reaper, not a
        hiccup, decides that a try is gone.
        """
        now = self._clock()
        try:
            return transaction(
                self._sessions, lambda s: recording.heartbeat_many(s, tries, now=now), retries=1
            )
        except TradewindError:
            log.warning("heartbeat failed; the metastore may be down", exc_info=True)
            return [True] * len(tries)

    def say(self, claimed: recording.ClaimedTry, line: str) -> None:
        """Add one of our own lines to the try's log."""
        append_line(self._path(claimed), line)

    def _say_recorded(
        self, claimed: recording.ClaimedTry, state: TaskState | None, detail: str | None
    ) -> None:
        if state is None:
            line = "This try lost its claim (zombie reaped or state changed); nothing recorded"
        else:
            line = marking_line(state, detail)
        self.say(claimed, line)

    def _path(self, claimed: recording.ClaimedTry) -> Path:
        key = claimed.key
        return log_path(
            self._settings.logging.base_log_folder,
            dag_id=key.dag_id,
            run_id=key.run_id,
            task_id=key.task_id,
            try_number=claimed.try_number,
            map_index=key.map_index,
        )


class PoolRunner:
    """Runs claimed tries in this worker process, one at a time.

    :param sessions: this process's own metastore connection (opened on first use):
        tasks read XComs and Variables through it, and the DAG cache locates the file
        of a version whose claim did not name it.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        sessions: SessionFactory,
        dagbag: DagBag,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._settings = settings
        self._sessions = sessions
        self._dagbag = dagbag
        self._clock = clock
        self._hostname = settings.core.hostname
        self._fernet = make_fernet(settings.core.fernet_key)
        prepare_user_code(settings)
        settle_log_level()

    def run(
        self,
        message: TaskMessage,
        claimed: recording.ClaimedTry,
        announce: Callable[[float | None], None],
    ) -> recording.FinishedTry:
        """Run one claimed try to its end; never raises for anything the task does.

        :param announce: called with the task's ``execution_timeout`` (seconds or
            ``None``) just before its code runs, so the executor can kill a worker
            whose task does not stop at its timeout.
        """
        log_fd = open_try_log(try_log(self._settings, message))
        try:
            write_line(log_fd, announcement(message, hostname=self._hostname))
            return self._run(message, claimed, announce, log_fd)
        finally:
            os.close(log_fd)

    def _run(
        self,
        message: TaskMessage,
        claimed: recording.ClaimedTry,
        announce: Callable[[float | None], None],
        log_fd: int,
    ) -> recording.FinishedTry:
        try:
            dag, task, spec = self._dagbag.task(
                message.dag_id, message.fingerprint, message.task_id, fileloc=claimed.fileloc
            )
        except Exception as exc:  # a DAG file's import error, a metastore hiccup: this try fails
            outcome = TryOutcome.crashed(f"cannot load the task: {exc}")
            write_line(log_fd, outcome.message or "")
            return self._finish(claimed, outcome, SerializedTask(message.task_id, "?"), log_fd)
        if spec.extra.get("empty"):
            events = [
                {"uri": o["uri"], "extra": {}, "alias": None}
                for o in spec.extra.get("outlets", ())
                if "uri" in o
            ]
            outcome = TryOutcome("success", dataset_events=events)
            return self._finish(claimed, outcome, spec, log_fd)
        timeout = timeout_seconds(task)
        announce(timeout)
        outcome = self._execute(dag, task, claimed, timeout, log_fd)
        return self._finish(claimed, outcome, spec, log_fd)

    def record_alone(self, finished: recording.FinishedTry) -> TaskState | None:
        """Record a try ourselves: the executor that would have is gone (scheduler killed)."""
        return transaction(
            self._sessions(),
            lambda s: record_ends(s, [finished], fernet=lambda: self._fernet)[0],
            retries=5,
        )

    def _execute(
        self,
        dag: DAG,
        task: BaseOperator,
        claimed: recording.ClaimedTry,
        timeout: float | None,
        log_fd: int,
    ) -> TryOutcome:
        # rendering sets template fields on the task: work on a copy, so the cached DAG
        # keeps its templates for the next try run by this worker
        task = copy.copy(task)
        if isinstance(task, BaseSensorOperator) and task.reschedule:
            # timeout and next poke on the runner's clock (a poke-mode sensor sleeps for
            # real between pokes, so it keeps the wall clock)
            task._clock = self._clock
        try:
            with isolated_try(log_fd, task.on_kill):
                return execute_claimed(
                    dag,
                    task,
                    claimed,
                    hostname=self._hostname,
                    sessions=self._sessions,
                    fernet=self._fernet,
                    timeout=timeout,
                    xcom_max_size=self._settings.core.xcom_max_size,
                )
        except SystemExit as exc:
            reason = f"Task called sys.exit({exc.code!r}) and ended without a result"
        except BaseException as exc:  # KeyboardInterrupt, GeneratorExit: never the worker's end
            reason = f"Task ended with {type(exc).__name__}: {exc}"
        write_line(log_fd, reason)
        return TryOutcome.crashed(reason)

    def _finish(
        self, claimed: recording.ClaimedTry, outcome: TryOutcome, spec: SerializedTask, log_fd: int
    ) -> recording.FinishedTry:
        """The try's end to record; its log says so now (the book adds a line only if
        the record finds the claim lost), sparing the executor a file per try."""
        finished = recording.finish(
            claimed, outcome, spec, hostname=self._hostname, pid=os.getpid(), now=self._clock()
        )
        write_line(log_fd, marking_line(finished.state, outcome.message))
        return finished


class UnstartedRunner:
    """Stands in for a :class:`PoolRunner` that could not be built in a pool process.

    Each try handed to this process fails at once, with the reason the runner could
    not start in the try's own log, where its user looks first, instead of a pool
    process that dies, is replaced and dies again while every try reads only "exited
    before reporting".
    """

    def __init__(self, settings: Settings, reason: str, *, clock: Callable[[], datetime]) -> None:
        self._settings = settings
        self._reason = f"The task runner could not start on {settings.core.hostname}: {reason}"
        self._clock = clock

    def run(
        self,
        message: TaskMessage,
        claimed: recording.ClaimedTry,
        announce: Callable[[float | None], None],
    ) -> recording.FinishedTry:
        outcome = TryOutcome.crashed(self._reason)
        finished = recording.finish(
            claimed,
            outcome,
            SerializedTask(message.task_id, "?"),
            hostname=self._settings.core.hostname,
            pid=os.getpid(),
            now=self._clock(),
        )
        log_fd = open_try_log(try_log(self._settings, message))
        try:
            write_line(log_fd, announcement(message, hostname=self._settings.core.hostname))
            write_line(log_fd, self._reason)
            write_line(log_fd, marking_line(finished.state, outcome.message))
        finally:
            os.close(log_fd)
        return finished

    def record_alone(self, finished: recording.FinishedTry) -> TaskState | None:
        """Nothing to record with: the metastore access is what may have failed."""
        return None


def marking_line(state: TaskState, detail: str | None) -> str:
    """The log line that ends a recorded try."""
    return f"Marking task as {state.upper()}" + (f": {detail}" if detail else "")
