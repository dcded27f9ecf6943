"""The controller's wheelhouse: tradewind and every dependency as wheels, for offline nodes.

This is the path docs/operations.md gives operators of air-gapped sites: ``pip wheel``
on the controller, and the ``common`` role installs on each node with ``--no-index``.
The dependencies' wheels are cached by a hash of ``pyproject.toml`` (building them
needs the package index once); tradewind's own wheel is built fresh on every run from
a copy of the source, so the test deploys the code under test and the checkout gains
no build directory.
"""

from __future__ import annotations

import fcntl
import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

from tests.cluster.nspawn_image import cache_root

REPO = Path(__file__).resolve().parents[2]
SOURCES = ("pyproject.toml", "README.md", "cluster")


class WheelhouseError(RuntimeError):
    """pip could not build a wheel."""


def pip(*args: str, log: Path, cwd: Path | None = None) -> None:
    argv = [sys.executable, "-m", "pip", "--disable-pip-version-check", *args]
    with open(log, "ab") as out:
        done = subprocess.run(argv, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
        raise WheelhouseError(f"pip {' '.join(args[:2])} exited {done.returncode}:\n{tail}")


def copy_source(target: Path) -> Path:
    """The files a wheel is built from, copied to ``target`` (no caches, no egg-info)."""
    target.mkdir(parents=True, exist_ok=True)
    for name in SOURCES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(
                source, target / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
            )
        else:
            shutil.copy2(source, target / name)
    return target


def dependency_wheels(log: Path, scratch: Path) -> Path:
    """The cached wheels of every dependency (built when ``pyproject.toml`` changed)."""
    key = hashlib.sha256((REPO / "pyproject.toml").read_bytes()).hexdigest()[:16]
    target = cache_root() / "wheelhouse" / key
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / "complete").exists():
            return target
        partial = target.with_name(f"{key}.partial")
        shutil.rmtree(partial, ignore_errors=True)
        source = copy_source(scratch / "deps-src")
        pip("wheel", "--wheel-dir", str(partial), str(source), log=log)
        for wheel in partial.glob("tradewind-*.whl"):
            wheel.unlink()
        (partial / "complete").touch()
        partial.rename(target)
        return target


def build_wheelhouse(target: Path, log: Path) -> Path:
    """A wheelhouse at ``target``: the cached dependencies and a fresh tradewind wheel."""
    deps = dependency_wheels(log, target.parent)
    target.mkdir(parents=True)
    for wheel in deps.glob("*.whl"):
        (target / wheel.name).hardlink_to(wheel)
    source = copy_source(target.parent / "tradewind-src")
    pip(
        "wheel",
        "--no-deps",
        "--wheel-dir",
        str(target),
        str(source),
        log=log,
    )
    if not list(target.glob("tradewind-*.whl")):
        raise WheelhouseError(f"pip built no tradewind wheel into {target}")
    return target
