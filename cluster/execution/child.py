"""The task child: a forked process that runs one try's user code and reports back.

Forking a warm worker costs no interpreter start: the DAG module is already imported,
and the supervisor forks the next child while idle (:class:`SpareChild`). The child leads its own process group (so a timeout kills
everything it started) and dies with its supervisor (so a killed worker leaves no
orphan running a try nobody watches). Its stdout and stderr go to the try's log.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import json
import logging
import os
import pickle
import signal
import sys
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cluster.errors import (
    TaskFailedNoRetry,
    TaskRescheduled,
    TaskSkipped,
    TaskTimeout,
    XComTooLarge,
)
from cluster.execution.outcome import TryOutcome
from cluster.sdk import BaseOperator
from cluster.sdk.context import execution_context
from cluster.sdk.templating import render_template_fields

log = logging.getLogger("tradewind.task")

_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class Job:
    """One try as the supervisor hands it to a spare child (pickled over a pipe)."""

    dag_id: str
    fingerprint: str
    task_id: str
    claimed: Any
    log_file: Path
    timeout: float | None


@dataclass(frozen=True)
class SpareChild:
    """A task child forked ahead of time, blocked until its job arrives.

    Forking a worker that holds SQLAlchemy and the user's DAGs costs ~10 ms on these
    machines; the supervisor forks the next child while it is idle, so a try starts
    with a pipe write instead. ``generation`` is the DAG cache generation the child
    inherited: a child older than a newly imported DAG is discarded, never used.
    """

    pid: int
    job_fd: int
    result_fd: int
    generation: int


def fork_spare(run_job: Callable[[Job], TryOutcome], *, generation: int) -> SpareChild:
    """Fork a child that waits for one :class:`Job`, runs ``run_job`` and reports back."""
    job_read, job_write = os.pipe()
    result_read, result_write = os.pipe()
    # objects that exist now are never collected in the child: its collector would
    # otherwise write to every page it scans and copy the whole heap (copy-on-write)
    gc.freeze()
    pid = os.fork()
    if pid:
        gc.unfreeze()  # the long-lived worker keeps collecting its own cycles
        os.close(job_read)
        os.close(result_write)
        return SpareChild(pid, job_write, result_read, generation)
    os.close(job_write)
    os.close(result_read)
    _spare_main(run_job, job_read, result_write)
    raise AssertionError("unreachable")  # pragma: no cover


def start_job(spare: SpareChild, job: Job) -> tuple[int, int]:
    """Hand ``job`` to ``spare``; return ``(pid, read end of its result pipe)``."""
    job.log_file.parent.mkdir(parents=True, exist_ok=True)
    _write_all(spare.job_fd, pickle.dumps(job))
    return spare.pid, spare.result_fd


def discard(spare: SpareChild) -> None:
    """Let an unused spare exit (it reads end-of-file instead of a job) and reap it."""
    for fd in (spare.job_fd, spare.result_fd):
        with contextlib.suppress(OSError):
            os.close(fd)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(spare.pid, 0)


def _spare_main(run_job: Callable[[Job], TryOutcome], job_fd: int, result_fd: int) -> None:
    code = 0
    try:
        os.setpgid(0, 0)
        _die_with_parent()
        payload = _read_all(job_fd)
        if not payload:
            os._exit(0)
        job = pickle.loads(payload)
        _redirect_output(job.log_file)
        outcome = run_job(job)
        _write_all(result_fd, outcome.to_json().encode())
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks)


def stop_on_sigterm(task: BaseOperator) -> None:
    """In the task child: SIGTERM (the supervisor stopping the try) calls ``on_kill`` first.

    The worker ignores SIGTERM so that its process group can be signalled safely; the
    child must not, or a try cleared by a user would run on until SIGKILL.
    """

    def _terminated(signum: int, frame: object) -> None:
        _call_on_kill(task)
        os._exit(128 + signum)

    signal.signal(signal.SIGTERM, _terminated)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _die_with_parent() -> None:
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _redirect_output(log_file: Path) -> None:
    fd = os.open(log_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    sys.stdout = os.fdopen(1, "w", buffering=1, closefd=False)
    sys.stderr = os.fdopen(2, "w", buffering=1, closefd=False)
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("[%(asctime)s] {%(name)s} %(levelname)s - %(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.INFO)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
    os.close(fd)


# --- what runs inside the child ------------------------------------------------------


def execute_try(
    task: BaseOperator,
    context: dict[str, Any],
    *,
    timeout: float | None,
    xcom_max_size: int,
) -> TryOutcome:
    """Render, execute and classify one try, as Airflow's task runner does."""
    ti = context["ti"]
    rendered: dict[str, Any] | None = None
    with execution_context(context):
        try:
            rendered = render_template_fields(task, context)
            with _time_limit(timeout):
                result = task.execute(context)
            if result is not None and getattr(task, "do_xcom_push", True):
                ti.xcom_push("return_value", result)
            outcome = _finish(ti, "success", rendered, xcom_max_size)
        except TaskSkipped as exc:
            log.info("Task skipped: %s", exc)
            outcome = _finish(ti, "skipped", rendered, xcom_max_size)
        except TaskRescheduled as exc:
            when = exc.reschedule_date
            at = when.isoformat() if isinstance(when, datetime) else str(when)
            log.info("Rescheduled: next poke at %s", at)
            outcome = TryOutcome(
                state="up_for_reschedule", reschedule_at=at, rendered_fields=rendered
            )
        except TaskFailedNoRetry as exc:
            log.error("Task failed without retry: %s", exc)
            outcome = TryOutcome("failed", False, _one_line(exc), rendered_fields=rendered)
        except TaskTimeout as exc:
            log.error("%s", exc)
            _call_on_kill(task)
            outcome = TryOutcome("failed", True, str(exc), rendered_fields=rendered)
        except Exception as exc:
            log.exception("Task failed with exception")
            outcome = TryOutcome("failed", True, _one_line(exc), rendered_fields=rendered)
        _run_callbacks(task, context, outcome, ti)
    return outcome


def timeout_seconds(task: BaseOperator) -> float | None:
    """The task's ``execution_timeout`` in seconds, or ``None``."""
    value = task.execution_timeout
    if value is None:
        return None
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def _finish(ti: Any, state: str, rendered: dict[str, Any] | None, limit: int) -> TryOutcome:
    pushed = [(key, _to_json(key, value, limit)) for key, value in ti.pushed_xcoms()]
    return TryOutcome(
        state=state,
        xcoms=pushed,
        skip_downstream=list(ti.skipped_downstream()),
        rendered_fields=rendered,
    )


def _to_json(key: str, value: Any, limit: int) -> str:
    try:
        text = json.dumps(value, default=_json_default)
    except (TypeError, ValueError) as exc:
        raise TaskFailedNoRetry(f"XCom '{key}' is not JSON-serializable: {exc}") from exc
    if len(text) > limit:
        raise XComTooLarge(
            f"XCom '{key}' is {len(text)} bytes, over core.xcom_max_size ({limit}); "
            "store large data elsewhere and push a reference"
        )
    return text


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON-serializable")


def _one_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".splitlines()[0][:1000]


@contextlib.contextmanager
def _time_limit(seconds: float | None) -> Iterator[None]:
    """Raise :class:`TaskTimeout` in the main thread after ``seconds`` (SIGALRM)."""
    if not seconds:
        yield
        return

    def _expired(signum: int, frame: object) -> None:
        raise TaskTimeout(f"Task timed out after {seconds:g} s (execution_timeout)")

    previous = signal.signal(signal.SIGALRM, _expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _call_on_kill(task: BaseOperator) -> None:
    try:
        task.on_kill()
    except Exception:
        log.exception("on_kill failed")


def _run_callbacks(
    task: BaseOperator, context: dict[str, Any], outcome: TryOutcome, ti: Any
) -> None:
    name = {"success": "on_success_callback", "up_for_reschedule": None}.get(outcome.state)
    if outcome.state == "failed":
        will_retry = outcome.retryable and ti.try_number <= ti.max_tries
        name = "on_retry_callback" if will_retry else "on_failure_callback"
    if name is None:
        return
    callbacks = getattr(task, name, None)
    if callbacks is None:
        return
    if outcome.message:
        context["exception"] = outcome.message
    for callback in callbacks if isinstance(callbacks, list | tuple) else [callbacks]:
        try:
            callback(context)
        except Exception:
            log.exception("%s failed", name)
