"""Importing one DAG file in a child process with a time limit.

A DAG file is user code: it may raise, loop forever, call ``sys.exit`` or crash the
interpreter. Each file is imported in a forked child that serializes every DAG it
defines and sends back plain JSON; the parent never executes DAG code, so nothing a
file does can stop the scheduler. A child past the time limit is killed.
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


def import_file(path: Path, *, timeout: float, search_path: Path | None = None) -> FileResult:
    """Import ``path`` in a forked child; never raises for anything the file does."""
    started = time.monotonic()
    receiver, sender = _FORK.Pipe(duplex=False)
    child = _FORK.Process(target=_child_main, args=(path, search_path, sender), daemon=True)
    child.start()
    sender.close()
    try:
        message = _receive(receiver, child, timeout)
    finally:
        receiver.close()
        _reap(child)
    elapsed = time.monotonic() - started
    if message is None:
        return FileResult(path, error=_why_no_answer(child, timeout), duration=elapsed)
    kind, payload, stacktrace = message
    if kind == "ok":
        return FileResult(path, dags=payload, duration=elapsed)
    return FileResult(path, error=payload, stacktrace=stacktrace, duration=elapsed)


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


def _child_main(path: Path, search_path: Path | None, sender: Connection) -> None:
    """In the child: import, serialize, send one message, exit without cleanup."""
    faulthandler.disable()  # a crash is reported to the user as an import error instead
    try:
        module = load_module(path, search_path=search_path)
        dags = {dag.dag_id: serialize_dag(dag).to_json() for dag in dags_in_module(module)}
        sender.send(("ok", dags, None))
    except SystemExit as exc:
        sender.send(("error", f"import called sys.exit({exc.code})", traceback.format_exc()))
    except BaseException as exc:
        sender.send(("error", _describe(exc, path), traceback.format_exc()))
    finally:
        sender.close()
        os._exit(0)


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
