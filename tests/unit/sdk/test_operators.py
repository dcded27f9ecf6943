"""Bash, Python, Branch and ShortCircuit operators, run in process."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from cluster.errors import TaskSkipped, TradewindError
from cluster.operators import bash as bash_module
from cluster.operators.bash import BashOperator, SubprocessRunner
from cluster.operators.empty import EmptyOperator
from cluster.operators.python import BranchPythonOperator, PythonOperator, ShortCircuitOperator
from cluster.sdk import DAG, TaskGroup
from cluster.sdk.runtime import watch_process_groups
from cluster.sdk.taskrun import execute_task
from cluster.sdk.testing import make_context


def run(op: Any) -> tuple[Any, dict[str, Any]]:
    context = make_context(op)
    return execute_task(op, context), context


def bash(command: str, **kwargs: Any) -> BashOperator:
    with DAG("d"):
        return BashOperator(task_id="b", bash_command=command, **kwargs)


def test_last_line_is_the_xcom_and_lines_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="tradewind.task")
    result, context = run(bash("echo first; echo last"))
    assert result == "last"
    assert context["ti"].xcom_pull(task_ids="b") == "last"
    assert "first" in caplog.messages and "last" in caplog.messages


def test_env_replaces_append_env_extends(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FROM_WORKER", "w")
    only = bash('echo "${FROM_WORKER:-none}-$MINE"', env={"MINE": "m"})
    both = bash('echo "${FROM_WORKER:-none}-$MINE"', env={"MINE": "m"}, append_env=True)
    assert run(only)[0] == "none-m" and run(both)[0] == "w-m"


def test_airflow_context_variables_are_exported() -> None:
    assert run(bash("echo $AIRFLOW_CTX_DAG_ID.$AIRFLOW_CTX_TASK_ID"))[0] == "d.b"


def test_cwd(tmp_path: Path) -> None:
    assert run(bash("pwd", cwd=str(tmp_path)))[0] == str(tmp_path)
    with pytest.raises(TradewindError, match="Can not find the cwd"):
        run(bash("pwd", cwd=str(tmp_path / "missing")))


def test_exit_codes() -> None:
    with pytest.raises(TaskSkipped):
        run(bash("exit 99"))
    with pytest.raises(TaskSkipped):
        run(bash("exit 3", skip_on_exit_code=[3]))
    with pytest.raises(TradewindError, match="non-zero exit code 2"):
        run(bash("exit 2"))


def test_templated_command() -> None:
    result, context = run(bash("echo {{ ds }} {{ params.n }}", params={"n": 4}))
    assert result == f"{context['ds']} 4"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as fh:  # a zombie is dead for our purpose
        return fh.read().split()[2] != "Z"


def test_on_kill_kills_the_whole_process_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    op = bash(f"sleep 60 & echo $! > {pidfile}; wait")
    errors: list[BaseException] = []

    def target() -> None:
        try:
            run(op)
        except BaseException as exc:  # the killed command exits non-zero
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    deadline = time.monotonic() + 10
    while not (pidfile.exists() and pidfile.read_text().strip()):
        assert time.monotonic() < deadline, "bash never started its child"
        time.sleep(0.01)
    child = int(pidfile.read_text())
    assert _alive(child)
    op.on_kill()
    thread.join(timeout=10)
    assert not thread.is_alive()
    deadline = time.monotonic() + 5
    while _alive(child):
        assert time.monotonic() < deadline, "the child sleep survived on_kill"
        time.sleep(0.01)
    assert errors and isinstance(errors[0], TradewindError)


def test_a_kill_while_the_command_is_starting_still_ends_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """bash can run before ``Popen`` returns: a kill in that moment waits for the start
    and ends the command, instead of finding no process and leaving it to run."""
    started, proceed = threading.Event(), threading.Event()
    real_popen = subprocess.Popen

    def slow_to_return(*args: Any, **kwargs: Any) -> subprocess.Popen[bytes]:
        process = real_popen(*args, **kwargs)
        started.set()
        proceed.wait(30)
        return process

    monkeypatch.setattr(bash_module.subprocess, "Popen", slow_to_return)
    runner = SubprocessRunner()
    results: list[int] = []
    command = threading.Thread(
        target=lambda: results.append(
            runner.run("sleep 60", dict(os.environ), None, "utf-8").exit_code
        )
    )
    command.start()
    assert started.wait(30)
    killer = threading.Thread(target=runner.kill)
    killer.start()
    proceed.set()
    killer.join(30)
    command.join(30)
    try:
        assert not command.is_alive(), "the command outlived the kill"
        assert results == [-signal.SIGTERM]
    finally:
        if command.is_alive():  # the old behaviour: end the sleep ourselves
            os.killpg(runner._process.pid, signal.SIGKILL)  # type: ignore[union-attr]
            command.join(30)


def test_a_bash_command_s_process_group_is_watched_while_it_runs() -> None:
    seen: list[tuple[int, bool]] = []
    watch_process_groups(lambda pgid, running: seen.append((pgid, running)))
    try:
        result, _ = run(bash("echo $$"))
    finally:
        watch_process_groups(None)
    pgid = seen[0][0]
    assert int(result) == pgid  # the group is the shell's own
    assert seen == [(pgid, True), (pgid, False)]


def test_python_context_injection_by_name_and_kwargs() -> None:
    def by_name(a: int, ds: str, ti: Any, b: int = 0) -> tuple[int, str, str, int]:
        return a, ds, ti.task_id, b

    def wildcard(**kwargs: Any) -> list[str]:
        return sorted(k for k in ("ds", "dag_run", "extra", "templates_dict") if k in kwargs)

    with DAG("d"):
        named = PythonOperator(
            task_id="n", python_callable=by_name, op_args=[1], op_kwargs={"b": 2}
        )
        wild = PythonOperator(
            task_id="w",
            python_callable=wildcard,
            op_kwargs={"extra": 1},
            templates_dict={"x": "{{ ds }}"},
        )
    result, context = run(named)
    assert result == (1, context["ds"], "n", 2)
    assert run(wild)[0] == ["dag_run", "ds", "extra", "templates_dict"]


def test_python_op_args_are_templated_and_reserved_names_rejected() -> None:
    def echo(value: str) -> str:
        return value

    def clash(ds: str) -> str:
        return ds

    with DAG("d"):
        op = PythonOperator(task_id="p", python_callable=echo, op_args=["{{ ds_nodash }}"])
        bad = PythonOperator(task_id="bad", python_callable=clash, op_args=["x"])
    result, context = run(op)
    assert result == context["ds_nodash"]
    with pytest.raises(ValueError, match="reserved"):
        run(bad)


def _branch_dag(choice: Any) -> BranchPythonOperator:
    with DAG("d"):
        branch = BranchPythonOperator(task_id="branch", python_callable=lambda: choice)
        a = EmptyOperator(task_id="a")
        b = EmptyOperator(task_id="b")
        with TaskGroup("grp") as grp:
            g1 = EmptyOperator(task_id="g1")
            g2 = EmptyOperator(task_id="g2")
            g1 >> g2
        join = EmptyOperator(task_id="join", trigger_rule="none_failed_min_one_success")
        branch >> [a, b, grp]
        branch >> join
        a >> join
    return branch


@pytest.mark.parametrize(
    ("choice", "skipped"),
    [
        ("a", ["b", "grp.g1"]),  # join is downstream of a: not skipped
        (["a", "b"], ["grp.g1"]),
        ("grp", ["a", "b", "join"]),  # a group follows its roots
        (None, ["a", "b", "grp.g1", "join"]),
    ],
)
def test_branch_skips_what_it_does_not_follow(choice: Any, skipped: list[str]) -> None:
    result, context = run(_branch_dag(choice))
    assert result == choice and context["ti"].skipped == skipped


def test_branch_to_unknown_task_fails() -> None:
    with pytest.raises(TradewindError, match="Invalid tasks found"):
        run(_branch_dag("nope"))


@pytest.mark.parametrize(("ignore", "skipped"), [(True, ["a", "b"]), (False, ["a"])])
def test_short_circuit(ignore: bool, skipped: list[str]) -> None:
    with DAG("d"):
        gate = ShortCircuitOperator(
            task_id="gate", python_callable=lambda: 0, ignore_downstream_trigger_rules=ignore
        )
        gate >> EmptyOperator(task_id="a") >> EmptyOperator(task_id="b")
    result, context = run(gate)
    assert result == 0 and context["ti"].skipped == skipped


def test_short_circuit_truthy_skips_nothing() -> None:
    with DAG("d"):
        gate = ShortCircuitOperator(task_id="gate", python_callable=lambda: "yes")
        gate >> EmptyOperator(task_id="a")
    result, context = run(gate)
    assert result == "yes" and context["ti"].skipped == []


def test_empty_operator_is_marked_for_the_scheduler() -> None:
    assert EmptyOperator.inherits_from_empty_operator is True
    assert BashOperator.inherits_from_empty_operator is False
