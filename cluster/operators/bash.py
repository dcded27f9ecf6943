"""``BashOperator``: run a templated command with ``bash -c`` in its own process group.

Output lines go to the task logger (``tradewind.task``) as they arrive; the last line
is the XCom. :meth:`BashOperator.on_kill` stops the whole process group, so children
such as ``sleep`` die with the shell when the runner enforces a timeout.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import threading
from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cluster.errors import TaskSkipped, TradewindError
from cluster.sdk.baseoperator import BaseOperator
from cluster.sdk.runtime import process_group_ended, process_group_started

log = logging.getLogger("tradewind.task")


@dataclass(frozen=True)
class CommandResult:
    exit_code: int
    output: str


def context_env(context: Mapping[str, Any]) -> dict[str, str]:
    """Airflow's ``AIRFLOW_CTX_*`` variables, so scripts know which task runs them."""
    ti = context.get("ti")
    run = context.get("dag_run")
    values = {
        "AIRFLOW_CTX_DAG_ID": getattr(ti, "dag_id", None),
        "AIRFLOW_CTX_TASK_ID": getattr(ti, "task_id", None),
        "AIRFLOW_CTX_DAG_RUN_ID": getattr(run, "run_id", None),
        "AIRFLOW_CTX_TRY_NUMBER": getattr(ti, "try_number", None),
        "AIRFLOW_CTX_LOGICAL_DATE": context.get("ts"),
        "AIRFLOW_CTX_EXECUTION_DATE": context.get("ts"),
    }
    return {k: str(v) for k, v in values.items() if v is not None}


class SubprocessRunner:
    """One ``bash -c`` child in a new session; :meth:`kill` ends its whole group."""

    def __init__(self) -> None:
        self._process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    def run(
        self, command: str, env: dict[str, str], cwd: str | None, encoding: str
    ) -> CommandResult:
        with self._lock:
            self._process = subprocess.Popen(
                ["bash", "-c", command],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=cwd,
                start_new_session=True,
            )
        process = self._process
        process_group_started(process.pid)
        try:
            assert process.stdout is not None
            last = ""
            for raw in iter(process.stdout.readline, b""):
                last = raw.decode(encoding, errors="backslashreplace").rstrip()
                log.info("%s", last)
            process.wait()
        finally:
            if process.returncode is not None:
                process_group_ended(process.pid)
        return CommandResult(process.returncode, last)

    def kill(self) -> None:
        """SIGTERM the process group, then SIGKILL it if it is still there.

        The process is read under the lock :meth:`run` holds while it starts it: bash
        may already run (and be seen running) before ``Popen`` returns, and a kill that
        read ``None`` then would leave the command to run on.
        """
        with self._lock:
            process = self._process
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)


def build_env(
    env: Mapping[str, str] | None, append_env: bool, context: Mapping[str, Any]
) -> dict[str, str]:
    """Airflow's rule: no ``env`` → the worker's environment; ``append_env`` → both."""
    if env is None:
        result = dict(os.environ)
    elif append_env:
        result = {**os.environ, **env}
    else:
        result = dict(env)
    result.update(context_env(context))
    return result


class BashOperator(BaseOperator):
    """Run ``bash_command``; exit code 0 succeeds, ``skip_on_exit_code`` skips.

    :param env: the whole environment of the command (unless ``append_env``).
    :param cwd: working directory; a temporary one is not created for you.
    :raises TradewindError: (``AirflowException``) on any other non-zero exit code.
    """

    template_fields: Sequence[str] = ("bash_command", "env", "cwd")
    template_fields_renderers = {"bash_command": "bash", "env": "json"}
    template_ext = (".sh", ".bash")
    ui_color = "#f0ede4"

    def __init__(
        self,
        *,
        bash_command: str,
        env: dict[str, str] | None = None,
        append_env: bool = False,
        output_encoding: str = "utf-8",
        skip_on_exit_code: int | Container[int] | None = 99,
        cwd: str | None = None,
        output_processor: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.bash_command = bash_command
        self.env = env
        self.append_env = append_env
        self.output_encoding = output_encoding
        self.skip_on_exit_code = skip_on_exit_code
        self.cwd = cwd
        self.output_processor = output_processor or (lambda output: output)
        self._runner = SubprocessRunner()

    def _skip_codes(self) -> Container[int]:
        if self.skip_on_exit_code is None:
            return ()
        if isinstance(self.skip_on_exit_code, int):
            return (self.skip_on_exit_code,)
        return self.skip_on_exit_code

    def execute(self, context: dict[str, Any]) -> Any:
        if self.cwd is not None and not os.path.isdir(self.cwd):
            raise TradewindError(f"Can not find the cwd: {self.cwd} (or it is not a directory)")
        env = build_env(self.env, self.append_env, context)
        log.info("Running command: %s", ["bash", "-c", self.bash_command])
        result = self._runner.run(self.bash_command, env, self.cwd, self.output_encoding)
        log.info("Command exited with return code %s", result.exit_code)
        if result.exit_code in self._skip_codes():
            raise TaskSkipped(f"Bash command returned exit code {result.exit_code}. Skipping.")
        if result.exit_code != 0:
            raise TradewindError(
                "Bash command failed. The command returned a non-zero exit code "
                f"{result.exit_code}."
            )
        return self.output_processor(result.output)

    def on_kill(self) -> None:
        log.info("Sending SIGTERM to the process group of the bash command")
        self._runner.kill()
