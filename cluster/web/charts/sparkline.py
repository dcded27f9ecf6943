"""The DAGs list's sparkline: the durations of a DAG's last runs as small bars.

A bar per run, oldest first, its height the run's duration relative to the longest
shown, coloured by the run's state; each bar's ``<title>`` names the run, its state and
its duration, and a run not finished yet is a flat tick. A bar with an ``href`` links
there (the run's page).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cluster.web.charts.svg import duration_text, esc, num

BAR = 6
GAP = 2
HEIGHT = 22


@dataclass(frozen=True, slots=True)
class RunBar:
    run_id: str
    state: str
    #: seconds from start to end; ``None`` while it has not both
    duration: float | None
    #: where the bar links to (the run's page), if anywhere
    href: str | None = None


def draw_sparkline(bars: Sequence[RunBar]) -> str:
    """A small SVG of ``bars``; empty text for no runs."""
    if not bars:
        return ""
    longest = max((b.duration or 0.0 for b in bars), default=0.0) or 1.0
    parts = []
    for index, bar in enumerate(bars):
        seconds = bar.duration
        height = 1.0 if not seconds else max(2.0, (HEIGHT - 2) * seconds / longest)
        took = duration_text(seconds) if seconds is not None else "not finished"
        rect = (
            f'<rect class="state-{esc(bar.state)}" x="{index * (BAR + GAP)}" '
            f'y="{num(HEIGHT - height)}" width="{BAR}" height="{num(height)}">'
            f"<title>{esc(bar.run_id)}: {esc(bar.state)}, {took}</title></rect>"
        )
        parts.append(f'<a href="{esc(bar.href)}">{rect}</a>' if bar.href else rect)
    width = len(bars) * (BAR + GAP)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart sparkline" width="{width}" '
        f'height="{HEIGHT}" viewBox="0 0 {width} {HEIGHT}" role="img" '
        f'aria-label="Durations of the last {len(bars)} runs">' + "".join(parts) + "</svg>"
    )
