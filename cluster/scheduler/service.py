"""The scheduler process: DAG processing, the loop and the executor, started and stopped together.

DAG processing runs in a thread of its own, so a slow or endless DAG file never delays
scheduling; it wakes the loop when something changed. Stopping drains: the loop ends
its iteration, the executor lets running tries finish.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy.orm import Session, sessionmaker

from cluster.config import Settings
from cluster.dagfiles.processor import DagProcessor, dag_folders
from cluster.errors import MetastoreError
from cluster.executors.base import Executor
from cluster.metastore.engine import transaction
from cluster.scheduler.fencing import Fence
from cluster.scheduler.loop import SchedulerLoop

log = logging.getLogger(__name__)

#: builds the executor given the callback that wakes the loop when a try finishes
ExecutorFactory = Callable[[Callable[..., None]], Executor]


class SchedulerService:
    """One scheduler: owns its loop, its DAG-processing thread and its executor."""

    def __init__(
        self,
        settings: Settings,
        *,
        sessions: sessionmaker[Session],
        executor_factory: ExecutorFactory,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = settings
        self._sessions = sessions
        self._clock = clock
        self.fence = Fence(host=settings.core.hostname)
        self.executor = executor_factory(lambda *_: self.loop.wake())
        self.loop = SchedulerLoop(
            settings,
            sessions=sessions,
            executor=self.executor,
            fence=self.fence,
            clock=clock,
            on_iteration=self._after_iteration,
        )
        self.processor = DagProcessor(
            folders=dag_folders(
                settings.core.dags_folder, load_examples=settings.core.load_examples
            ),
            sessions=sessions,
            timeout=settings.core.dag_file_processor_timeout,
            paused_at_creation=settings.core.dags_are_paused_at_creation,
        )
        self._stop = threading.Event()
        self._processing: threading.Thread | None = None

    def run(self) -> None:
        """Start everything and schedule until :meth:`stop`; drains on the way out."""
        self.executor.start()
        epoch = transaction(self._sessions, lambda s: self.fence.acquire(s, now=self._clock()))
        log.info("scheduler on %s holds epoch %s", self.settings.core.hostname, epoch)
        self.process_dags_once()
        self._processing = threading.Thread(
            target=self._process_dags, name="dag-processing", daemon=True
        )
        self._processing.start()
        try:
            self.loop.run()
        finally:
            self._stop.set()
            self.executor.stop(drain=True)
            if self._processing is not None:
                self._processing.join(timeout=self.settings.core.dag_file_processor_timeout + 5)
            self.fence.release()

    def stop(self) -> None:
        self._stop.set()
        self.loop.stop()

    def process_dags_once(self) -> None:
        """Process changed DAG files now; a metastore hiccup is logged and retried later."""
        try:
            report = self.processor.process()
        except MetastoreError as exc:
            log.warning("DAG processing could not write to the metastore: %s", exc)
            return
        if report.imported:
            log.info(
                "DAG processing: %d files imported, %d DAGs, %d errors",
                len(report.imported),
                report.dags,
                len(report.errors),
            )
            self.loop.wake()

    def _process_dags(self) -> None:
        interval = self.settings.scheduler.dag_dir_list_interval
        while not self._stop.wait(interval):
            try:
                self.process_dags_once()
            except Exception:
                log.exception("DAG processing failed; trying again in %s s", interval)

    def _after_iteration(self) -> None:
        reap = getattr(self.executor, "reap_dead_workers", None)
        if reap is not None and reap():
            log.warning("replaced dead local worker processes; their tries become zombies")
