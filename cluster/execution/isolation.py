"""Running a try inside the long-lived worker process, with the fences a fork gave for free.

A task child forked per try would cost a fork, copy-on-write faults and an exit per
try, about half of a worker's CPU on short tasks. The local pool's worker runs the try
itself instead, and this module keeps the guarantees a separate process gives:

- output: file descriptors 1 and 2 and the root logger point at the try's log file for
  the duration of the try, then back;
- process state: the environment, the working directory and the signal dispositions
  the worker relies on are restored after the try, so one task's ``os.environ`` edits
  never leak into the next;
- stopping: ``SIGUSR1`` from the executor (the try was cleared or marked meanwhile,
  or overran its timeout) calls the task's ``on_kill`` (a Bash task's process group is
  killed) and ends the worker; the executor replaces it;
- ``sys.exit`` in a task ends the try as failed, not the worker.

What a fork contained and this cannot: a task that segfaults, calls ``os._exit`` or
hangs in C code takes the worker down or has it killed; the executor watches its
workers and records such a try as failed with the reason (see
:mod:`cluster.executors.local`).
"""

from __future__ import annotations

# the C module under :mod:`signal`: its getsignal returns the disposition as is, where
# signal.getsignal converts it to an enum through a caught ValueError for a Python
# handler (about 3 µs, eight times a try)
import _signal
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterator

#: the executor's "stop the try you are running now" signal
STOP_SIGNAL = signal.SIGUSR1
#: dispositions a task may change and the worker needs back (and STOP_SIGNAL's)
_RESTORED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGALRM)
#: the try's log lines, one formatter for every try (a handler is made per try, so
#: that a task's filters or level on it never reach the next try)
_FORMATTER = logging.Formatter("[%(asctime)s] {%(name)s} %(levelname)s - %(message)s")


@contextlib.contextmanager
def isolated_try(log_fd: int, on_stop: Callable[[], None]) -> Iterator[None]:
    """Run the body as one try in this process (see the module docstring).

    :param log_fd: the try's log, open for appending; the caller closes it.
    :param on_stop: called when the executor sends :data:`STOP_SIGNAL`; the process
        then exits with ``128 + signal``.
    """
    saved_signals = [(sig, _signal.getsignal(sig)) for sig in _RESTORED_SIGNALS]
    saved_env = _environment()
    saved_cwd = os.getcwd()

    def _stop(signum: int, frame: object) -> None:
        with contextlib.suppress(Exception):
            on_stop()
        _flush()
        os._exit(128 + signum)

    saved_signals.append((STOP_SIGNAL, _signal.signal(STOP_SIGNAL, _stop)))
    try:
        with _output_to(log_fd):
            yield
    finally:
        for sig, handler in saved_signals:
            if _signal.getsignal(sig) is not handler:
                with contextlib.suppress(TypeError, ValueError):
                    _signal.signal(sig, handler if handler is not None else _signal.SIG_DFL)
        if _environment() != saved_env:
            os.environ.clear()
            os.environ.update({os.fsdecode(k): os.fsdecode(v) for k, v in saved_env.items()})
        with contextlib.suppress(OSError):
            os.chdir(saved_cwd)


def settle_log_level() -> None:
    """Give this process's root logger the level a try logs at, once, for good.

    A try's log takes INFO records; changing the root level for each try and back
    clears the cache of every logger in the process twice per try (hundreds of
    loggers once SQLAlchemy and Celery are imported): about a tenth of a no-op try's
    CPU where the configured level is above INFO. The process's own handlers get the
    configured level instead, so what they print is unchanged.
    """
    root = logging.getLogger()
    if root.level <= logging.INFO:  # INFO already, or DEBUG: the try's lines pass
        return
    for handler in root.handlers:
        handler.setLevel(max(handler.level, root.level))
    root.setLevel(logging.INFO)


def _environment() -> dict[bytes, bytes]:
    """The environment as the OS sees it, copied without decoding each variable (a hot
    path: ``dict(os.environ)`` decodes every one, once more than the try itself costs)."""
    return dict(os.environ._data)  # type: ignore[attr-defined]


@contextlib.contextmanager
def _output_to(log_fd: int) -> Iterator[None]:
    """Point fds 1 and 2, ``sys.stdout``/``sys.stderr`` and the root logger at ``log_fd``."""
    _flush()
    saved_fds = (os.dup(1), os.dup(2))
    saved_streams = (sys.stdout, sys.stderr)
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    stdout = os.fdopen(1, "w", buffering=1, closefd=False)
    stderr = os.fdopen(2, "w", buffering=1, closefd=False)
    sys.stdout, sys.stderr = stdout, stderr
    handler = logging.StreamHandler(stderr)
    handler.setFormatter(_FORMATTER)
    root.handlers = [handler]
    if saved_level != logging.INFO:  # setLevel clears every logger's cache
        root.setLevel(logging.INFO)
    try:
        yield
    finally:
        _flush()
        root.handlers = saved_handlers
        if saved_level != logging.INFO:
            root.setLevel(saved_level)
        sys.stdout, sys.stderr = saved_streams
        for stream in (stdout, stderr):
            with contextlib.suppress(Exception):
                stream.close()
        os.dup2(saved_fds[0], 1)
        os.dup2(saved_fds[1], 2)
        for saved in saved_fds:
            os.close(saved)


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
