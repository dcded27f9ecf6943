"""The reference configurations in configs/ are valid for the real tools."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

CONFIGS = Path(__file__).resolve().parents[3] / "configs"


def test_haproxy_reference_config_is_valid() -> None:
    haproxy = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin")
    if haproxy is None:
        pytest.fail("haproxy is needed by this test: run scripts/install-deps")
    path = CONFIGS / "haproxy" / "haproxy.cfg"
    done = subprocess.run(
        [haproxy, "-c", "-f", str(path)], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stdout + done.stderr
    text = path.read_text()
    assert "option httpchk GET /health" in text
    assert "option redispatch" in text
    assert "bind *:1936" in text and "stats auth" in text
    assert "inter 500ms fall 2 rise 1" in text and "http-check expect status 200" in text
