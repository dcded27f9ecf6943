"""Virtualenvs for ``PythonVirtualenvOperator``: one per requirements set, built once per node.

A virtualenv is named by a hash of what makes it (sorted requirements, Python version,
system site packages, pip options and index URLs) under the node's venvs folder
(``$TRADEWIND_HOME/venvs/<hash>``, see :mod:`cluster.sdk.node`), and reused by every
later try on the node. A file lock beside it (``<hash>.lock``) makes the pool processes
of one node, and workers sharing a home, wait for one build instead of racing; a marker
written last says the build finished, so a half-built virtualenv (a killed worker) is
rebuilt.

The virtualenv is made by the standard library's ``venv`` of the chosen interpreter,
without pip; requirements are installed by the pip of the worker's own interpreter
aimed at it (``pip --python``), so pip behaves as configured on the node (its config
files, ``PIP_*`` variables). When the worker has no pip, the virtualenv gets its own.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import json
import logging
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cluster.errors import TradewindError

log = logging.getLogger("tradewind.task")

MARKER = "install_complete_marker.json"


@dataclass(frozen=True)
class VenvSpec:
    """What a virtualenv is made of; equal specs share one virtualenv."""

    requirements: tuple[str, ...] = ()
    python_version: str | None = None
    system_site_packages: bool = True
    pip_install_options: tuple[str, ...] = ()
    index_urls: tuple[str, ...] = ()

    def describe(self) -> str:
        """The canonical text hashed into the folder name (kept in the marker)."""
        return json.dumps(
            {
                "requirements": sorted(self.requirements),
                "python_version": self.python_version,
                "system_site_packages": self.system_site_packages,
                "pip_install_options": list(self.pip_install_options),
                "index_urls": list(self.index_urls),
            },
            sort_keys=True,
        )

    def digest(self) -> str:
        return hashlib.sha256(self.describe().encode()).hexdigest()[:16]


def base_interpreter(python_version: str | None) -> str:
    """The interpreter to build from: ``python<version>`` on ``PATH``, or this one.

    :raises TradewindError: when no such interpreter exists on this node.
    """
    if not python_version:
        return sys.executable
    found = shutil.which(f"python{python_version}")
    if found is None:
        raise TradewindError(
            f"python_version={python_version!r}: no interpreter python{python_version} on "
            f"this node's PATH; install it or leave python_version out"
        )
    return found


def ensure_venv(spec: VenvSpec, folder: Path) -> Path:
    """The ``bin/python`` of the virtualenv for ``spec`` under ``folder``, built if needed.

    :raises TradewindError: when building it fails (the output of venv or pip is logged).
    """
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / spec.digest()
    with open(f"{path}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        marker = path / MARKER
        if marker.exists() and marker.read_text() == spec.describe():
            log.info("Re-using cached Python virtual environment in %s", path)
            return path / "bin" / "python"
        if path.exists():
            log.warning("Found a partly built virtual environment in %s; rebuilding it", path)
            shutil.rmtree(path)
        try:
            _build(spec, path)
        except BaseException:
            shutil.rmtree(path, ignore_errors=True)
            raise
        marker.write_text(spec.describe())
        log.info("New Python virtual environment created in %s", path)
    return path / "bin" / "python"


def _build(spec: VenvSpec, path: Path) -> None:
    own_pip = importlib.util.find_spec("pip") is not None
    command = [base_interpreter(spec.python_version), "-m", "venv"]
    if spec.system_site_packages:
        command.append("--system-site-packages")
    if own_pip or not spec.requirements:
        command.append("--without-pip")
    _run([*command, str(path)], "create the virtual environment")
    if not spec.requirements:
        return
    python = path / "bin" / "python"
    pip = (
        [sys.executable, "-m", "pip", "--python", str(python)]
        if own_pip
        else [str(python), "-m", "pip"]
    )
    _run([*pip, "install", *spec.pip_install_options, *_index_options(spec.index_urls),
          *spec.requirements], "install the requirements")  # fmt: skip


def _index_options(index_urls: Sequence[str]) -> list[str]:
    if not index_urls:
        return []
    return ["--index-url", index_urls[0], *(f"--extra-index-url={u}" for u in index_urls[1:])]


def _run(command: list[str], what: str) -> None:
    log.info("Running %s", command)
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    for line in (done.stdout + done.stderr).splitlines():
        log.info("%s", line)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise TradewindError(f"could not {what} (exit code {done.returncode}): {tail[0]}")
