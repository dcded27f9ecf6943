"""A try run inside the worker process: its output goes to its log, its mess does not stay."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from cluster.execution.isolation import isolated_try
from cluster.execution.logs import open_try_log


@contextlib.contextmanager
def _try_in(log: Path) -> Iterator[None]:
    """One try with its log open as the runner opens it."""
    fd = open_try_log(log)
    try:
        with isolated_try(fd, on_stop=lambda: None):
            yield
    finally:
        os.close(fd)


def test_output_of_the_try_goes_to_its_log_and_comes_back_after(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "attempt=1.log"
    with _try_in(log):
        print("from print")
        os.write(1, b"from fd 1\n")
        subprocess.run(["sh", "-c", "echo from a child >&2"], check=True)
    text = log.read_text()
    assert "from print" in text
    assert "from fd 1" in text
    assert "from a child" in text
    print("after the try")
    assert "after the try" not in log.read_text()


def test_environment_working_directory_and_signals_are_restored(tmp_path: Path) -> None:
    before_env = dict(os.environ)
    before_cwd = os.getcwd()
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)}
    with _try_in(tmp_path / "a.log"):
        os.environ["TW_LEAK"] = "1"
        os.environ.pop("PATH", None)
        os.chdir(tmp_path)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, lambda signum, frame: None)
    assert dict(os.environ) == before_env
    assert os.getcwd() == before_cwd
    assert {sig: signal.getsignal(sig) for sig in before} == before


def test_a_stop_request_calls_on_kill_and_ends_the_process(tmp_path: Path) -> None:
    """The executor's stop signal: ``on_kill`` runs, then the process exits 128 + signal."""
    marker = tmp_path / "killed"
    script = f"""
import os, signal, sys, time
from pathlib import Path
from cluster.execution.isolation import STOP_SIGNAL, isolated_try
from cluster.execution.logs import open_try_log
fd = open_try_log(Path({str(tmp_path / "b.log")!r}))
with isolated_try(fd, lambda: Path({str(marker)!r}).touch()):
    os.kill(os.getpid(), STOP_SIGNAL)
    time.sleep(30)
sys.exit(0)
"""
    result = subprocess.run([sys.executable, "-c", script], timeout=60, check=False)
    assert result.returncode == 128 + signal.SIGUSR1
    assert marker.exists()


def test_a_settled_level_keeps_what_the_process_prints_and_spares_each_try_a_cache_clear(
    tmp_path: Path,
) -> None:
    """A worker configured at WARNING: the try's log still gets INFO lines, the worker's
    own handler still prints only WARNING and up, and no try changes the root level
    (each change clears the cache of every logger in the process)."""
    script = f"""
import io, logging, os
from pathlib import Path
from cluster.execution.isolation import isolated_try, settle_log_level
from cluster.execution.logs import open_try_log
own = io.StringIO()
logging.basicConfig(level=logging.WARNING, stream=own)
settle_log_level()
changes = []
manager = logging.getLogger().manager
clear = manager._clear_cache
manager._clear_cache = lambda: (changes.append(1), clear())[1]
library = logging.getLogger("some.library")
library.info("library info")
library.warning("library warning")
for n in range(3):
    fd = open_try_log(Path({str(tmp_path / "try.log")!r}))
    with isolated_try(fd, lambda: None):
        logging.getLogger("airflow.task").info("task info %d", n)
    os.close(fd)
print(repr(own.getvalue()), len(changes))
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    printed, changes = result.stdout.rsplit(" ", 1)
    assert "library warning" in printed
    assert "library info" not in printed
    assert "task info" not in printed
    assert int(changes) == 0
    log = (tmp_path / "try.log").read_text()
    assert [f"task info {n}" in log for n in range(3)] == [True] * 3
