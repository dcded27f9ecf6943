"""The DAGs list's sparkline: the durations of a DAG's last runs as small bars.

A bar per run, oldest first, its height the run's duration relative to the longest
shown, coloured by the run's state; each bar's ``<title>`` names the run, its state and
its duration, and a run not finished yet is a flat tick. The whole line may link
somewhere (the DAG's runs). The list draws a hundred of these per page, 2,500 bars:
the markup is kept short and written with one format string per bar.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cluster.web.charts.svg import duration_text, esc

BAR = 6
GAP = 2
HEIGHT = 22
_BAR = '<rect class="state-{}" x="{}" y="{}" width="6" height="{}"><title>{}: {}, {}</title></rect>'


@dataclass(frozen=True, slots=True)
class RunBar:
    run_id: str
    state: str
    #: seconds from start to end; ``None`` while it has not both
    duration: float | None


def draw_sparkline(bars: Sequence[RunBar], href: str | None = None) -> str:
    """A small SVG of ``bars`` (linking to ``href`` if given); empty text for no runs."""
    if not bars:
        return ""
    longest = max((b.duration or 0.0 for b in bars), default=0.0) or 1.0
    parts = []
    for index, bar in enumerate(bars):
        seconds = bar.duration
        height = 1 if not seconds else max(2, round((HEIGHT - 2) * seconds / longest))
        took = duration_text(seconds) if seconds is not None else "not finished"
        state = esc(bar.state)
        parts.append(
            _BAR.format(
                state, index * (BAR + GAP), HEIGHT - height, height,
                esc(bar.run_id), state, took,
            )
        )  # fmt: skip
    width = len(bars) * (BAR + GAP)
    body = "".join(parts)
    if href:
        body = f'<a href="{esc(href)}">{body}</a>'
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart sparkline" width="{width}" '
        f'height="{HEIGHT}" viewBox="0 0 {width} {HEIGHT}" role="img" '
        f'aria-label="Durations of the last {len(bars)} runs">{body}</svg>'
    )
