"""Calling a Python function in another interpreter, as Airflow's virtualenv operators do.

The function's source (decorators removed) goes into a small script; its arguments are
written to a file with the chosen serializer, the script runs in the other interpreter
and writes the result to another file, which is read back. The serializer is Airflow's
choice: ``pickle`` by default (standard library, so any interpreter reads it; values
must be picklable and plain: no DAG or task objects), or ``json`` (only JSON types
cross), ``dill`` or ``cloudpickle`` (when installed on both sides). An exception in
the function is written to a termination file and becomes the task's error message.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import logging
import os
import shlex
import tempfile
import textwrap
from collections.abc import Callable, Container, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cluster.errors import TaskSkipped, TradewindError
from cluster.operators.bash import SubprocessRunner

log = logging.getLogger("tradewind.task")

SERIALIZERS = ("pickle", "json", "dill", "cloudpickle")

_SCRIPT = """\
import sys
import {serializer}

{source}

with open(sys.argv[1], "{read}") as file:
    arg_dict = {serializer}.load(file)
with open(sys.argv[3], "r") as file:
    virtualenv_string_args = [line.strip() for line in file]

try:
    res = {name}(*arg_dict["args"], **arg_dict["kwargs"])
except Exception as e:
    with open(sys.argv[4], "w") as file:
        file.write(str(e))
    raise

with open(sys.argv[2], "{write}") as file:
    if res is not None:
        {serializer}.dump(res, file)
"""


def function_source(fn: Callable[..., Any]) -> str:
    """``fn``'s source from its ``def`` on, dedented: decorators (``@task.virtualenv``)
    would not resolve in the other interpreter.

    :raises TradewindError: when the source cannot be read (a function made at run time).
    """
    try:
        source = textwrap.dedent(inspect.getsource(fn))
    except (OSError, TypeError) as exc:
        raise TradewindError(f"cannot read the source of {fn.__name__}: {exc}") from exc
    tree = ast.parse(source)
    node = tree.body[0]
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        return "\n".join(source.splitlines()[node.lineno - 1 :]) + "\n"
    return source


@dataclass
class PythonCall:
    """One call of ``fn(*args, **kwargs)`` in ``python``."""

    fn: Callable[..., Any]
    args: list[Any]
    kwargs: dict[str, Any]
    serializer: str = "pickle"
    string_args: Iterable[str] = ()
    env: dict[str, str] = field(default_factory=dict)
    skip_on_exit_code: Container[int] = ()

    def run(self, python: Path, runner: SubprocessRunner) -> Any:
        """Run it and return the function's result.

        :raises TaskSkipped: on an exit code in ``skip_on_exit_code``.
        :raises TradewindError: on any other failure, with the function's error message.
        """
        module = importlib.import_module(self.serializer)
        binary = self.serializer != "json"
        with tempfile.TemporaryDirectory(prefix="tradewind-venv-call") as tmp:
            folder = Path(tmp)
            files = [folder / n for n in ("script.in", "script.out", "string_args.txt")]
            termination = folder / "termination.log"
            script = folder / "script.py"
            script.write_text(self._script(binary))
            payload = {"args": self.args, "kwargs": self.kwargs}
            with open(files[0], "wb" if binary else "w") as fh:
                module.dump(payload, fh)
            files[2].write_text("\n".join(map(str, self.string_args)))
            command = [str(python), str(script), *map(str, files), str(termination)]
            result = runner.run("exec " + shlex.join(command), self.env, None, "utf-8")
            if result.exit_code in self.skip_on_exit_code:
                raise TaskSkipped(f"Process exited with code {result.exit_code}. Skipping.")
            if result.exit_code != 0:
                detail = termination.read_text() if termination.exists() else result.output
                raise TradewindError(
                    f"Process returned non-zero exit status {result.exit_code}.\n{detail}"
                )
            if files[1].stat().st_size == 0:
                return None
            with open(files[1], "rb" if binary else "r") as fh:
                return module.load(fh)

    def _script(self, binary: bool) -> str:
        mode = "b" if binary else ""
        return _SCRIPT.format(
            serializer=self.serializer,
            source=function_source(self.fn),
            name=self.fn.__name__,
            read="r" + mode,
            write="w" + mode,
        )


def subprocess_env(env_vars: dict[str, str] | None, inherit_env: bool) -> dict[str, str]:
    """The worker's environment (unless ``inherit_env`` is off) plus ``env_vars``."""
    env = dict(os.environ) if inherit_env else {}
    env.update(env_vars or {})
    return env
