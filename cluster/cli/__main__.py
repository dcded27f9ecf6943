"""``python -m cluster.cli``: the ``tradewind`` command without the installed script."""

from __future__ import annotations

from cluster.cli.main import main

if __name__ == "__main__":
    main()
