"""``BashSensor``: poke by running a command; exit code 0 means done."""

from __future__ import annotations

from typing import Any

from cluster.errors import TaskFailedNoRetry
from cluster.operators.bash import SubprocessRunner, build_env
from cluster.sensors.base import BaseSensorOperator


class BashSensor(BaseSensorOperator):
    """Done when ``bash_command`` exits 0.

    :param retry_exit_code: when set, only this code means "poke again"; any other
        non-zero code fails the task.
    """

    template_fields = ("bash_command", "env")

    def __init__(
        self,
        *,
        bash_command: str,
        env: dict[str, str] | None = None,
        output_encoding: str = "utf-8",
        retry_exit_code: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.bash_command = bash_command
        self.env = env
        self.output_encoding = output_encoding
        self.retry_exit_code = retry_exit_code
        self._runner = SubprocessRunner()

    def poke(self, context: dict[str, Any]) -> bool:
        env = build_env(self.env, False, context)
        result = self._runner.run(self.bash_command, env, None, self.output_encoding)
        if result.exit_code == 0:
            return True
        if self.retry_exit_code is not None and result.exit_code != self.retry_exit_code:
            raise TaskFailedNoRetry(f"Command exited with return code {result.exit_code}")
        return False

    def on_kill(self) -> None:
        self._runner.kill()
