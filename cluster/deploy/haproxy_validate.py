"""``haproxy -c``: the real HAProxy's verdict on a config, when HAProxy is installed.

pyhaproxy accepts text that HAProxy refuses (an unknown keyword, a bad timeout), so
every config the tools write is also checked by the binary that will run it. On a
controller without HAProxy the check is skipped and the caller says so.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from cluster.errors import ConfigError

#: where Debian installs it, often outside a non-root PATH
SBIN_DIRS = ("/usr/sbin", "/usr/local/sbin", "/sbin")
#: seconds ``haproxy -c`` may take (it resolves server host names)
CHECK_TIMEOUT = 60.0
#: the ``[ALERT]    (1234) : config : `` prefix of HAProxy's messages
_ALERT = re.compile(r"^\[ALERT\]\s*\(\d+\)\s*:\s*(config\s*:\s*)?")


def find_haproxy() -> str | None:
    """The path of the ``haproxy`` binary, or ``None`` when it is not installed."""
    search = os.pathsep.join([os.environ.get("PATH", ""), *SBIN_DIRS])
    return shutil.which("haproxy", path=search)


def validate_file(path: Path, *, haproxy: str | None = None, label: str | None = None) -> bool:
    """Run ``haproxy -c -f path``.

    :param label: how messages name the file (the target, when ``path`` is a temporary copy).
    :returns: ``True`` when HAProxy accepted it, ``False`` when HAProxy is not installed.
    :raises ConfigError: HAProxy refused it; the message carries HAProxy's alerts.
    """
    binary = haproxy or find_haproxy()
    if binary is None:
        return False
    try:
        done = subprocess.run(
            [binary, "-c", "-f", str(path)],
            capture_output=True,
            text=True,
            check=False,
            timeout=CHECK_TIMEOUT,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ConfigError(f"haproxy -c could not run on {path}: {exc}") from exc
    if done.returncode != 0:
        name = label or str(path)
        output = (done.stdout + done.stderr).replace(str(path), name)
        alerts = [_ALERT.sub("", line).strip() for line in output.splitlines() if "[ALERT]" in line]
        detail = "; ".join(alerts) or output.strip()
        raise ConfigError(f"haproxy -c refused {name}: {detail}")
    return True


def validate_text(
    text: str, *, directory: Path | None = None, haproxy: str | None = None, label: str = "config"
) -> bool:
    """Validate config ``text`` by writing it to a temporary file first.

    :param directory: where the temporary file goes (the target's directory, so that
        relative paths in the config resolve as they will).
    :param label: how messages name the config.
    :returns: as :func:`validate_file`.
    """
    with tempfile.NamedTemporaryFile(
        "w", suffix=".cfg", prefix=".haproxy-", dir=directory, delete=False
    ) as handle:
        handle.write(text)
        temp = Path(handle.name)
    try:
        return validate_file(temp, haproxy=haproxy, label=label)
    finally:
        temp.unlink(missing_ok=True)
