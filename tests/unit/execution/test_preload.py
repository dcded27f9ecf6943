"""The pool forks after the modules most tries import are loaded, so its processes
inherit them instead of each importing them on its first try."""

from __future__ import annotations

import subprocess
import sys

PRELOADED = ("cluster.operators.bash", "cluster.operators.python", "jinja2.ext")


def test_the_process_that_forks_the_pool_has_the_common_operators_loaded() -> None:
    probe = (
        "import sys, cluster.execution.worker; "
        f"print(' '.join(m for m in {PRELOADED!r} if m not in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == []
