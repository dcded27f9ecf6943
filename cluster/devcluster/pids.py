"""Processes the dev cluster started, known by PID and start time across CLI invocations.

``dev-cluster up`` exits while its services run on, so later commands (``kill``,
``start``, ``down``) only have the PIDs it recorded. A PID alone is not proof: once the
process is gone the number may be given to someone else's process. So each record also
holds the process's start time (``/proc/PID/stat`` field 22), and nothing is signalled
unless both still match. A process that died but was not reaped (orphans are re-parented
to PID 1, which may never reap them) shows as a zombie and counts as gone.

Every service runs in a session and process group of its own, led by the recorded
process, so a kill takes its children with it (gunicorn's workers, Celery's pool, the
JVM's helpers): the node died, not just one process of it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cluster.devcluster.services.process import ServiceError, wait_until

PROC = Path("/proc")


@dataclass(frozen=True)
class ProcessId:
    """One process: its PID and when it started (clock ticks after boot)."""

    pid: int
    started: int


def identify(pid: int) -> ProcessId | None:
    """The process ``pid`` as it is now; None when there is none or it is a zombie."""
    fields = _stat(pid)
    if fields is None or fields[0] in ("Z", "X"):
        return None
    return ProcessId(pid, int(fields[19]))


def is_running(process: ProcessId) -> bool:
    """Whether ``process`` (the same one, not a reuse of its PID) still runs."""
    return identify(process.pid) == process


def spawn(
    argv: Sequence[str],
    *,
    output: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> ProcessId:
    """Start ``argv`` detached (own session, no terminal, output appended to ``output``).

    It outlives the caller: nothing of the calling process (stdin, a pipe, a signal to
    its process group) reaches it.

    :raises ServiceError: the program cannot be run, or exited before it was seen.
    """
    output.parent.mkdir(parents=True, exist_ok=True)
    try:
        with output.open("ab") as log:
            child = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=dict(env) if env is not None else None,
                cwd=cwd,
            )
    except OSError as exc:
        raise ServiceError(f"cannot run {argv[0]}: {exc}") from exc
    found = identify(child.pid)
    if found is None:
        code = child.wait()
        raise ServiceError(f"{argv[0]} exited at once with {code}; see {output}")
    return found


def signal_group(process: ProcessId, signum: int) -> bool:
    """Send ``signum`` to the process group ``process`` leads; False when it is gone.

    Only a process that still is ``process`` and still leads its own group is
    signalled: never a stranger that inherited the PID.
    """
    fields = _stat(process.pid)
    if fields is None or identify(process.pid) != process:
        return False
    target = process.pid if int(fields[2]) == process.pid else None
    with contextlib.suppress(ProcessLookupError):
        if target is not None:
            os.killpg(target, signum)
        else:
            os.kill(process.pid, signum)
        return True
    return False


def kill(process: ProcessId, *, timeout: float = 30.0) -> bool:
    """SIGKILL the process and its group and wait until it is gone; False if it already was."""
    if not signal_group(process, signal.SIGKILL):
        return False
    wait_until(lambda: not is_running(process), timeout=timeout, what=f"PID {process.pid} to die")
    return True


def stop(process: ProcessId, *, timeout: float = 30.0) -> bool:
    """SIGTERM the group, wait up to ``timeout`` s, then SIGKILL; False if it was gone."""
    if not signal_group(process, signal.SIGTERM):
        return False
    try:
        wait_until(
            lambda: not is_running(process), timeout=timeout, what=f"PID {process.pid} to stop"
        )
    except ServiceError:
        kill(process)
    # leftovers of the group (a pool child that ignored SIGTERM) go too
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    return True


def _stat(pid: int) -> list[str] | None:
    """The fields of ``/proc/PID/stat`` after the command name (state first)."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return text[text.rindex(")") + 2 :].split()
