"""``tradewind cluster``: operator views of the whole cluster (status, doctor)."""

from __future__ import annotations

import click


@click.group("cluster")
def cluster_group() -> None:
    """Inspect the whole cluster: its members and its endpoints."""
