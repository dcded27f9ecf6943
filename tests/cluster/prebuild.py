"""Builds the deployment test's node image and dependency wheels ahead of the tests.

On a clean machine both come from the network and take minutes. ``make test`` starts
this in the background before lint and the unit tests, and runs the cluster tests last,
so the downloads overlap work that does not need them. Each build holds its cache's lock:
a test that needs one while it is still being built waits for it, and a build that failed
here is built again (and its error reported) by the test that needs it.

Run ``python -m tests.cluster.prebuild``; it prints what it found or built.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from tests.cluster.nspawn_image import ImageError, cache_root, ensure_image
from tests.cluster.wheelhouse import WheelhouseError, dependency_wheels


def main() -> int:
    logs = cache_root()
    logs.mkdir(parents=True, exist_ok=True)
    try:
        image, seconds = ensure_image(logs / "build.log")
        print(f"image {image} ({'cached' if not seconds else f'built in {seconds:.0f} s'})")
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="tradewind-prebuild-") as scratch:
            wheels = dependency_wheels(logs / "pip.log", Path(scratch))
        print(f"wheels {wheels} ({time.monotonic() - started:.0f} s)")
    except (ImageError, WheelhouseError) as exc:
        print(f"prebuild: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
