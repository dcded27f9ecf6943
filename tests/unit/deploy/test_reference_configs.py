"""The reference configurations in configs/ are valid for the real tools."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from cluster.devcluster.services.zookeeper import ZooKeeperEnsemble, loopback_addresses

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


def _zoo_settings(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.splitlines() if "=" in line and line[0] != "#")
    return {key.strip(): value.strip() for key, value in pairs}


def test_zookeeper_reference_config_matches_what_the_tests_run(tmp_path: Path) -> None:
    """The ensemble every HA test starts uses the reference zoo.cfg's timing, admin and
    four-letter-word settings; only the per-node places (data directory, addresses,
    ports) differ. Both describe three servers."""
    reference = _zoo_settings((CONFIGS / "zookeeper" / "zoo.cfg").read_text())
    ensemble = ZooKeeperEnsemble(tmp_path, loopback_addresses(3, client_port=12181))
    tested = _zoo_settings(ensemble.config_text(1))
    for key in (
        "tickTime",
        "initLimit",
        "syncLimit",
        "admin.enableServer",
        "4lw.commands.whitelist",
    ):
        assert tested[key] == reference[key], key
    for settings in (reference, tested):
        assert sorted(k for k in settings if k.startswith("server.")) == [
            "server.1",
            "server.2",
            "server.3",
        ]
