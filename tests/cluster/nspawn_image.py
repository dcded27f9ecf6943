"""The node image of the deployment test: a Debian root file system built by mmdebstrap.

Nodes have no network, so the image holds every package the Ansible roles install;
the roles then only configure, enable and start. The image is cached under a directory
named by a hash of everything that goes into it (suite, packages, hooks), so a change of
the package list builds a new image and an unchanged one is reused across runs. Building
takes a few minutes on a clean machine (packages come from the Debian mirror); a lock
file keeps two test runs from building the same image at once.

``make test`` builds it ahead of the cluster tests (see :mod:`tests.cluster.prebuild`).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import time
from pathlib import Path

SUITE = "bookworm"

#: every Debian package a role installs, plus what a node needs to be reached and booted
PACKAGES = (
    "systemd",
    "systemd-sysv",
    "dbus",
    "openssh-server",
    "sudo",
    "iproute2",
    "procps",
    "ca-certificates",
    "tzdata",
    "python3",
    "python3-apt",
    "python3-venv",
    "mariadb-server",
    "mariadb-client",
    "rabbitmq-server",
    "zookeeper",
    "zookeeperd",
    "default-jre-headless",
    "haproxy",
    "curl",
)

#: services the roles enable and start themselves: disabled in the image, as on a fresh host
#: where a role has not run yet
DISABLED_UNITS = ("mariadb", "rabbitmq-server", "zookeeper", "haproxy")

#: shell run in the image root (``$1``) after the packages are installed
CUSTOMIZE = (
    'rm -f "$1/etc/hostname"',
    "printf '127.0.0.1 localhost\\n::1 localhost ip6-localhost ip6-loopback\\n' > \"$1/etc/hosts\"",
    'chroot "$1" systemctl disable ' + " ".join(DISABLED_UNITS),
    # a container has no consoles to log in on, and nothing to resize
    'chroot "$1" systemctl mask getty@tty1.service serial-getty@console.service '
    "console-getty.service systemd-resolved.service",
    'install -d -m 700 "$1/root/.ssh"',
    "printf 'PasswordAuthentication no\\nUseDNS no\\n' > \"$1/etc/ssh/sshd_config.d/test.conf\"",
)

#: bump to force a rebuild when something outside the lists above changes
FORMAT = 1


class ImageError(RuntimeError):
    """The node image could not be built."""


def cache_root() -> Path:
    """``$TRADEWIND_TEST_CACHE`` or ``/var/cache/tradewind-test``."""
    return Path(os.environ.get("TRADEWIND_TEST_CACHE", "/var/cache/tradewind-test"))


def image_key() -> str:
    """A hash of everything that goes into the image."""
    recipe = "\n".join([SUITE, str(FORMAT), *PACKAGES, *CUSTOMIZE])
    return hashlib.sha256(recipe.encode()).hexdigest()[:16]


def image_path() -> Path:
    return cache_root() / "images" / image_key() / "rootfs"


def ensure_image(log: Path) -> tuple[Path, float]:
    """The cached image's root, built first when missing; and the build's seconds (0 if cached).

    :raises ImageError: mmdebstrap is missing or failed (its output is in ``log``).
    """
    target = image_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / "etc" / "os-release").exists():
            return target, 0.0
        started = time.monotonic()
        build(target, log)
        return target, time.monotonic() - started


def build(target: Path, log: Path) -> None:
    """Run mmdebstrap into a scratch directory, then move it to ``target``."""
    mmdebstrap = shutil.which("mmdebstrap")
    if mmdebstrap is None:
        raise ImageError("mmdebstrap is not installed: apt-get install -y mmdebstrap")
    scratch = target.with_name("rootfs.partial")
    shutil.rmtree(scratch, ignore_errors=True)
    argv = [
        mmdebstrap,
        "--variant=apt",
        "--mode=root",
        "--include=" + ",".join(PACKAGES),
        *[f"--customize-hook={hook}" for hook in CUSTOMIZE],
        SUITE,
        str(scratch),
    ]
    with open(log, "ab") as out:
        done = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        shutil.rmtree(scratch, ignore_errors=True)
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
        raise ImageError(f"mmdebstrap exited {done.returncode}:\n{tail}")
    scratch.rename(target)
