"""The scheduler process: election, DAG processing, the loop and the executor together.

Every master runs one; only the leader (the election's holder with the newest epoch)
schedules and processes DAG files, so standbys never write scheduling state. DAG
processing runs in a thread of its own while leading, so a slow or endless DAG file
never delays scheduling. Stopping releases the election first, so a standby takes
over at once, then drains: the loop ends its iteration, the executor lets running
tries finish.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from cluster.config import Settings
from cluster.dagfiles.callbacks import CallbackRunner
from cluster.dagfiles.processor import DagProcessor, dag_folders
from cluster.errors import MetastoreError
from cluster.executors.base import Executor
from cluster.metastore.components import settings_fingerprints
from cluster.metastore.heartbeats import ComponentHeartbeat
from cluster.metrics.scheduler import SchedulerMetrics
from cluster.scheduler.election import Elector, build_elector
from cluster.scheduler.fencing import Fence
from cluster.scheduler.leadership import Leadership
from cluster.scheduler.loop import SchedulerLoop
from cluster.scheduler.observer import SchedulerObserver
from cluster.scheduler.slas import SlaChecker

log = logging.getLogger(__name__)

#: builds the executor given the callback that wakes the loop when a try finishes
ExecutorFactory = Callable[[Callable[..., None]], Executor]


class SchedulerService:
    """One scheduler: owns its election, loop, DAG-processing thread and executor."""

    def __init__(
        self,
        settings: Settings,
        *,
        sessions: sessionmaker[Session],
        executor_factory: ExecutorFactory,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        elector: Elector | None = None,
        observer: SchedulerObserver | None = None,
    ) -> None:
        self.settings = settings
        self._sessions = sessions
        self._clock = clock
        host = settings.core.hostname
        self.fence = Fence(host=host)
        self.executor = executor_factory(lambda *_: self.loop.wake())
        self.loop = SchedulerLoop(
            settings,
            sessions=sessions,
            executor=self.executor,
            fence=self.fence,
            clock=clock,
            on_iteration=self._after_iteration,
        )
        self.leadership = Leadership(
            elector or build_elector(settings.ha, identifier=f"{host}:{os.getpid()}"),
            self.fence,
            sessions=sessions,
            clock=clock,
            on_elected=self._on_elected,
            on_deposed=self._on_deposed,
        )
        self.processor = DagProcessor(
            folders=dag_folders(
                settings.core.dags_folder, load_examples=settings.core.load_examples
            ),
            sessions=sessions,
            timeout=settings.core.dag_file_processor_timeout,
            paused_at_creation=settings.core.dags_are_paused_at_creation,
            parallelism=settings.scheduler.parsing_processes,
        )
        # DAG-level callbacks run here, in children, never in the scheduling loop
        self.callbacks = CallbackRunner(
            sessions,
            log_folder=settings.logging.base_log_folder,
            timeout=settings.core.dag_file_processor_timeout,
            clock=clock,
            base_url=settings.webserver.base_url,
        )
        self.slas = SlaChecker(sessions, clock=clock) if settings.core.check_slas else None
        self.heartbeat = ComponentHeartbeat(
            sessions,
            kind="scheduler",
            host=host,
            interval=settings.scheduler.heartbeat_interval,
            describe=self._describe,
            clock=clock,
            fingerprints=settings_fingerprints(settings),
        )
        self.observer = observer or SchedulerObserver(SchedulerMetrics(), sessions=sessions)
        self._last_epoch: int | None = None
        self._takeover_pending = False
        self._stop = threading.Event()
        self._processing: threading.Thread | None = None
        self._processing_stop = threading.Event()
        self._processing_lock = threading.Lock()

    def run(self) -> None:
        """Contend, and schedule while leading, until :meth:`stop`; drains on the way out."""
        self.executor.start()
        self.heartbeat.start()
        self.leadership.elector.start(on_change=self.loop.wake)
        try:
            self.loop.run(self.leadership)
        finally:
            self._stop.set()
            self.leadership.release()
            self._stop_processing()
            self.executor.stop(drain=True)
            self.heartbeat.stop()

    def stop(self) -> None:
        """Stop scheduling; the election is left at once, from a thread of its own.

        A standby may take over while this loop ends its iteration: the fencing epoch
        rejects whatever this one would still write.
        """
        self._stop.set()
        self.loop.stop()
        threading.Thread(target=self.leadership.elector.stop, name="leave-election").start()

    def process_dags_once(self) -> None:
        """Process changed DAG files now; a metastore hiccup is logged and retried later."""
        try:
            report = self.processor.process()
        except MetastoreError as exc:
            log.warning("DAG processing could not write to the metastore: %s", exc)
            return
        self.observer.processed(report)
        try:
            if self.slas is not None:
                self.slas.check_if_due()
            self.callbacks.run_pending()
        except MetastoreError as exc:
            log.warning("SLAs or DAG callbacks could not be checked, claimed or closed: %s", exc)
        if report.imported:
            log.info(
                "DAG processing: %d files imported, %d DAGs, %d errors",
                len(report.imported),
                report.dags,
                len(report.errors),
            )
            self.loop.wake()

    # --- roles ------------------------------------------------------------------------

    def _on_elected(self, epoch: int) -> None:
        """Take over: rebuild the view from the metastore alone.

        Scheduling comes first: re-sending the previous leader's queued tries and
        processing DAG files wait until the first iteration of the new term is done.
        """
        self._last_epoch = epoch
        self.loop.reset()
        self._takeover_pending = True
        self.observer.leadership(True)

    def _finish_takeover(self) -> None:
        self._takeover_pending = False
        try:
            resent = self.loop.resend_orphans()
        except MetastoreError as exc:
            log.warning("could not re-send the previous leader's queued tries: %s", exc)
        else:
            if resent:
                log.info("re-sent %d tries queued by the previous leader", resent)
        self._start_processing()

    def _on_deposed(self, reason: str) -> None:
        self._takeover_pending = False
        self._stop_processing()
        self.observer.leadership(False)

    def _describe(self) -> tuple[str, dict[str, Any]]:
        extra = {
            "epoch": self._last_epoch,
            "election": self.settings.ha.election,
            "identifier": f"{self.fence.host}:{self.fence.pid}",
        }
        return self.leadership.role, extra

    # --- DAG processing (leader only) ----------------------------------------------------

    def _start_processing(self) -> None:
        """A processing thread for this term; one of an earlier term ends by itself."""
        self._processing_stop.set()
        self._processing_stop = threading.Event()
        self._processing = threading.Thread(
            target=self._process_dags,
            args=(self._processing_stop,),
            name="dag-processing",
            daemon=True,
        )
        self._processing.start()

    def _stop_processing(self) -> None:
        """Ask the thread to stop; a pass under way ends by itself (its writes are idempotent)."""
        self._processing_stop.set()
        if self._stop.is_set() and self._processing is not None:
            self._processing.join(timeout=self.settings.core.dag_file_processor_timeout + 5)

    def _process_dags(self, term_over: threading.Event) -> None:
        interval = self.settings.scheduler.dag_dir_list_interval
        while not term_over.is_set():
            with self._processing_lock:
                if term_over.is_set():
                    return
                try:
                    self.process_dags_once()
                except Exception:
                    log.exception("DAG processing failed; trying again in %s s", interval)
            term_over.wait(interval)

    def _after_iteration(self) -> None:
        self.observer.iteration(self.loop.stats.last_duration, leading=self.leadership.leading)
        if self._takeover_pending and self.leadership.leading:
            self._finish_takeover()
        reap = getattr(self.executor, "reap_dead_workers", None)
        if reap is not None and reap():
            log.warning("replaced dead local worker processes; their tries were recorded as failed")
