"""scripts/fetch-uv picks the pinned uv wheel of this platform from PyPI's JSON index."""

from __future__ import annotations

import importlib.machinery
import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "fetch-uv"


def _script() -> ModuleType:
    loader = importlib.machinery.SourceFileLoader("fetch_uv", str(SCRIPT))
    spec = importlib.util.spec_from_loader("fetch_uv", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def _entry(name: str) -> dict[str, object]:
    return {"filename": name, "url": f"../../packages/{name}", "hashes": {"sha256": name[-12:]}}


def test_the_pinned_release_for_this_machine_is_picked_with_an_absolute_url() -> None:
    fetch_uv = _script()
    version = fetch_uv.VERSION
    files = [
        _entry("uv-0.0.1-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"),
        _entry(f"uv-{version}-py3-none-musllinux_1_1_x86_64.whl"),
        _entry(
            f"uv-{version}-py3-none-manylinux_2_17_aarch64.manylinux2014_aarch64."
            "musllinux_1_1_aarch64.whl"
        ),
        _entry(f"uv-{version}-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"),
        _entry(f"uv-{version}.tar.gz"),
    ]
    url, sha256 = fetch_uv.pick(files, "x86_64")
    wanted = f"uv-{version}-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
    assert url == f"https://pypi.org/packages/{wanted}"
    assert sha256 == wanted[-12:]
    assert fetch_uv.pick(files, "aarch64")[0].endswith("musllinux_1_1_aarch64.whl")


def test_a_platform_without_a_wheel_is_an_error_the_caller_falls_back_on() -> None:
    fetch_uv = _script()
    with pytest.raises(LookupError, match="riscv64"):
        fetch_uv.pick([_entry(f"uv-{fetch_uv.VERSION}.tar.gz")], "riscv64")
