"""A recorded process is signalled only while it is still that process, and a dead one
counts as gone even while it is an unreaped zombie."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from cluster.devcluster.pids import ProcessId, identify, is_running, kill, signal_group, spawn, stop
from cluster.devcluster.probes import is_ready, log_contains, tcp_open
from cluster.devcluster.services.process import ServiceError, wait_until
from cluster.devcluster.state import Probe

SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)"]


def test_a_spawned_process_is_detached_and_killed_with_its_group(tmp_path: Path) -> None:
    process = spawn(
        [
            sys.executable,
            "-c",
            "import subprocess, time; subprocess.Popen(['sleep', '120']); time.sleep(120)",
        ],
        output=tmp_path / "out.log",
    )
    try:
        assert is_running(process)
        assert Path(f"/proc/{process.pid}/stat").read_text().split(") ")[1].split()[3] == str(
            process.pid
        )
        assert kill(process)
        assert not is_running(process)
        assert not kill(process)
    finally:
        signal_group(process, signal.SIGKILL)


def test_a_pid_with_another_start_time_is_never_signalled(tmp_path: Path) -> None:
    process = spawn(SLEEPER, output=tmp_path / "out.log")
    try:
        stranger = ProcessId(process.pid, process.started + 1)
        assert not is_running(stranger)
        assert not signal_group(stranger, signal.SIGKILL)
        assert is_running(process)
    finally:
        kill(process)


def test_stop_asks_first(tmp_path: Path) -> None:
    process = spawn(SLEEPER, output=tmp_path / "out.log")
    assert stop(process, timeout=30)
    assert not is_running(process)


def test_a_zombie_is_gone() -> None:
    child = subprocess.Popen(SLEEPER)
    found = identify(child.pid)
    assert found is not None
    child.kill()
    # not reaped yet: /proc still lists it, as a zombie
    wait_until(
        lambda: Path(f"/proc/{child.pid}/stat").read_text().split(") ")[1][0] == "Z",
        timeout=30,
        what="the child to be a zombie",
    )
    assert identify(child.pid) is None
    child.wait()


def test_a_program_that_cannot_run_is_one_error(tmp_path: Path) -> None:
    with pytest.raises(ServiceError, match="cannot run /nonexistent/binary"):
        spawn(["/nonexistent/binary"], output=tmp_path / "out.log")


def test_probes_ask_real_questions(tmp_path: Path) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert tcp_open("127.0.0.1", port)
        assert is_ready(Probe("tcp", host="127.0.0.1", port=port), output=tmp_path / "x")
    assert not tcp_open("127.0.0.1", port)
    log = tmp_path / "out.log"
    log.write_text("worker ready\nrestarting\n")
    offset = log.stat().st_size
    assert log_contains(log, "worker ready", offset=0)
    assert not log_contains(log, "worker ready", offset=offset)
    with log.open("a") as handle:
        handle.write("worker ready\n")
    assert is_ready(Probe("log", text="worker ready"), output=log, offset=offset)
