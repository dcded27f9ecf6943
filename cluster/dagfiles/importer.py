"""Importing one DAG file in a child process with a time limit.

A DAG file is user code: it may raise, loop forever, call ``sys.exit`` or crash the
interpreter. Files are imported in a forked child that serializes every DAG each
defines and sends back plain JSON; the parent never executes DAG code, so nothing a
file does can stop the scheduler. A child past a file's time limit is killed.

One child imports a whole batch of files in turn, one answer per file: a fork of the
scheduler and the child's first import of the operators cost ten times what a small
DAG file does, so a child per file made a cold pass over 1,000 files take seconds of
CPU. A file that kills or stalls its child fails alone: the next files of its batch go
to a new child. Files of one batch share the child's modules (a helper module is
imported once per batch, as in one Python process); a file that changes global state
at import may affect the files after it in its batch, as in Airflow's DAG bag.
"""

from __future__ import annotations

import faulthandler
import hashlib
import importlib.util
import multiprocessing
import os
import signal
import sys
import time
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from cluster.dagfiles.serialize import serialize_dag
from cluster.errors import DagDefinitionError
from cluster.sdk import DAG
from cluster.sdk.dagcontext import capture_dags

_FORK = multiprocessing.get_context("fork")


@dataclass(frozen=True)
class FileResult:
    """What importing one file gave: serialized DAGs, or an error for the user."""

    path: Path
    #: ``{dag_id: serialized JSON}``
    dags: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    stacktrace: str | None = None
    duration: float = 0.0


def module_name_for(path: Path) -> str:
    """A unique module name per path, so two ``dag.py`` files never collide."""
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:12]
    return f"tradewind_dag_{digest}_{path.stem.replace('.', '_')}"


def load_module(path: Path, *, search_path: Path | None = None) -> Any:
    """Import ``path`` as a fresh module in this process (children and runners only)."""
    if search_path is not None and str(search_path) not in sys.path:
        sys.path.insert(0, str(search_path))
    name = module_name_for(path)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise DagDefinitionError(f"{path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        with capture_dags() as captured:
            spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    # a ``@dag`` function called without assigning its DAG is auto-registered, as in Airflow
    setattr(module, "__tradewind_dags__", captured)  # noqa: B010
    return module


def dags_in_module(module: Any) -> list[DAG]:
    """Every DAG defined by a module: its globals and the DAGs auto-registered at import."""
    seen: dict[int, DAG] = {}
    for value in [*vars(module).values(), *getattr(module, "__tradewind_dags__", [])]:
        if isinstance(value, DAG):
            seen.setdefault(id(value), value)
    return list(seen.values())


#: a file to import and the folder to put on ``sys.path`` first (``None``: none)
Job = tuple[Path, Path | None]


def import_file(path: Path, *, timeout: float, search_path: Path | None = None) -> FileResult:
    """Import ``path`` in a forked child; never raises for anything the file does."""
    return next(import_files([(path, search_path)], timeout=timeout))


def import_files(jobs: Sequence[Job], *, timeout: float) -> Iterator[FileResult]:
    """Import each file of ``jobs`` in forked children, in order, one result per file;
    never raises for anything a file does. ``timeout`` bounds each file's import."""
    pending = list(jobs)
    while pending:
        done = 0
        for result in _batch(pending, timeout):
            done += 1
            yield result
        del pending[:done]


def _batch(jobs: list[Job], timeout: float) -> Iterator[FileResult]:
    """One child importing ``jobs`` in turn until it ends, dies or stalls: a result per
    file it got through, the last one the error of a file that ended it early."""
    receiver, sender = _FORK.Pipe(duplex=False)
    child = _FORK.Process(target=_child_main, args=(jobs, sender), daemon=True)
    started = time.monotonic()
    child.start()
    sender.close()
    try:
        for path, _ in jobs:
            message = _receive(receiver, child, timeout)
            elapsed, started = time.monotonic() - started, time.monotonic()
            if message is None:
                _reap(child)
                yield FileResult(path, error=_why_no_answer(child, timeout), duration=elapsed)
                return
            kind, payload, stacktrace = message
            if kind == "ok":
                yield FileResult(path, dags=payload, duration=elapsed)
            else:
                yield FileResult(path, error=payload, stacktrace=stacktrace, duration=elapsed)
    finally:
        receiver.close()
        _reap(child)


def _receive(receiver: Connection, child: Any, timeout: float) -> Any:
    try:
        if receiver.poll(timeout):
            return receiver.recv()
    except (EOFError, OSError):
        return None
    return None


def _reap(child: Any) -> None:
    if child.is_alive():
        child.kill()
    child.join(5)


def _why_no_answer(child: Any, timeout: float) -> str:
    code = child.exitcode
    if code is None or code == -signal.SIGKILL:
        return f"import did not finish within {timeout:g} s (core.dag_file_processor_timeout)"
    if code < 0:
        return f"import crashed the interpreter with signal {signal.Signals(-code).name}"
    return f"import exited the interpreter with code {code}"


def _child_main(jobs: list[Job], sender: Connection) -> None:
    """In the child: import and serialize each file, one message each, then exit
    without cleanup."""
    faulthandler.disable()  # a crash is reported to the user as an import error instead
    try:
        for path, search_path in jobs:
            sender.send(_import_one(path, search_path))
    finally:
        sender.close()
        os._exit(0)


def _import_one(path: Path, search_path: Path | None) -> tuple[str, Any, str | None]:
    try:
        module = load_module(path, search_path=search_path)
        dags = {dag.dag_id: serialize_dag(dag).to_json() for dag in dags_in_module(module)}
        return ("ok", dags, None)
    except SystemExit as exc:
        return ("error", f"import called sys.exit({exc.code})", traceback.format_exc())
    except BaseException as exc:
        return ("error", _describe(exc, path), traceback.format_exc())


def _describe(exc: BaseException, path: Path) -> str:
    """One line for the user: the error and where in the DAG file it arose."""
    if isinstance(exc, SyntaxError):
        return f"SyntaxError: {exc.msg} ({Path(exc.filename or path).name}, line {exc.lineno})"
    line = _line_in(exc, path)
    where = f" ({path.name}, line {line})" if line is not None else ""
    return f"{type(exc).__name__}: {exc}{where}"


def _line_in(exc: BaseException, path: Path) -> int | None:
    """The DAG file's last line on ``exc``'s traceback: the statement that failed, or the
    call into a module (an import, an operator) that failed further down."""
    found = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename == str(path):
            found = frame.lineno
    return found
