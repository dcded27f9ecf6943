"""Line charts of one value per task across the last runs: duration, tries, landing time.

The x axis is the runs, oldest on the left, each labelled by its logical date; the y
axis starts at zero. Each task is a line of its own colour with a dot per run, and
every dot's ``<title>`` names the task, the run and the value; a legend names each
line. A run where the task has no value (not run yet, or no such task then) leaves a
gap in its line rather than a made-up zero.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cluster.web.charts.svg import Scale, esc, frame, nice_ticks, num, text

LEFT = 80
TOP = 16
PLOT_WIDTH = 760
PLOT_HEIGHT = 300
#: room under the plot for the run labels
AXIS_HEIGHT = 70
LEGEND_ROW = 18
#: how many distinct line colours the stylesheet defines (series-0 .. series-9)
PALETTE = 10


@dataclass(frozen=True, slots=True)
class RunColumn:
    """One run on the x axis."""

    run_id: str
    label: str


@dataclass(frozen=True, slots=True)
class Series:
    """One task's values, one per run of the axis (``None``: no value for that run)."""

    name: str
    values: tuple[float | None, ...]


def draw_across_runs(
    runs: Sequence[RunColumn],
    series: Sequence[Series],
    *,
    kind: str,
    label: str,
    value_text: Callable[[float], str],
) -> str:
    """The SVG line chart; ``value_text`` writes a value for the axis and the titles."""
    legend_rows = (len(series) + 3) // 4
    width = LEFT + PLOT_WIDTH + 20
    height = TOP + PLOT_HEIGHT + AXIS_HEIGHT + LEGEND_ROW * legend_rows + 10
    values = [v for s in series for v in s.values if v is not None]
    if not runs or not values:
        body = [text(LEFT, TOP + 20, "No values yet: no run of this DAG has finished a task.")]
        return frame(width, TOP + 40, body, kind=kind, label=f"{label}: no values yet")
    ticks = nice_ticks(max(values))
    y = Scale(0.0, ticks[-1], TOP + PLOT_HEIGHT, TOP)
    step = PLOT_WIDTH / max(len(runs), 1)
    x = Scale(0.0, 1.0, LEFT + step / 2, LEFT + step / 2 + step)
    body = _y_axis(ticks, y, value_text) + _x_axis(runs, x)
    for index, one in enumerate(series):
        body += _line(one, index, runs, x, y, value_text)
    body += _legend(series, TOP + PLOT_HEIGHT + AXIS_HEIGHT)
    return frame(width, height, body, kind=kind, label=f"{label} of {len(series)} tasks")


def _y_axis(ticks: list[float], y: Scale, value_text: Callable[[float], str]) -> list[str]:
    parts = ['<g class="axis">']
    for tick in ticks:
        at = y(tick)
        parts.append(f'<line x1="{LEFT}" y1="{num(at)}" x2="{LEFT + PLOT_WIDTH}" y2="{num(at)}"/>')
        parts.append(text(LEFT - 6, at + 4, value_text(tick), anchor="end"))
    parts.append("</g>")
    return parts


def _x_axis(runs: Sequence[RunColumn], x: Scale) -> list[str]:
    """Run labels, slanted; with many runs only every k-th is written (all have titles)."""
    every = max(1, len(runs) // 25)
    parts = ['<g class="axis runs">']
    base = TOP + PLOT_HEIGHT + 12
    for index, run in enumerate(runs):
        if index % every:
            continue
        at = x(index)
        parts.append(
            f'<text x="{num(at)}" y="{base}" text-anchor="end" '
            f'transform="rotate(-40 {num(at)} {base})">{esc(run.label)}<title>{esc(run.run_id)}</title></text>'
        )
    parts.append("</g>")
    return parts


def _line(
    one: Series,
    index: int,
    runs: Sequence[RunColumn],
    x: Scale,
    y: Scale,
    value_text: Callable[[float], str],
) -> list[str]:
    """The task's polyline (broken where it has no value) and its dots with titles."""
    klass = f"series series-{index % PALETTE}"
    parts = [f'<g class="{klass}" data-series="{esc(one.name)}">']
    segment: list[str] = []
    segments: list[list[str]] = [segment]
    for column, value in enumerate(one.values):
        if value is None:
            segment = []
            segments.append(segment)
            continue
        segment.append(f"{num(x(column))},{num(y(value))}")
    parts += [f'<polyline points="{" ".join(s)}"/>' for s in segments if len(s) > 1]
    for column, value in enumerate(one.values):
        if value is not None:
            title = f"{one.name} · {runs[column].label}: {value_text(value)}"
            parts.append(
                f'<circle cx="{num(x(column))}" cy="{num(y(value))}" r="3">'
                f"<title>{esc(title)}</title></circle>"
            )
    parts.append("</g>")
    return parts


def _legend(series: Sequence[Series], top: float) -> list[str]:
    parts = ['<g class="legend">']
    column_width = PLOT_WIDTH / 4
    for index, one in enumerate(series):
        row, column = divmod(index, 4)
        left = LEFT + column * column_width
        at = top + row * LEGEND_ROW + 12
        parts.append(
            f'<g class="series series-{index % PALETTE}"><line x1="{num(left)}" y1="{num(at - 4)}" '
            f'x2="{num(left + 16)}" y2="{num(at - 4)}"/></g>'
        )
        parts.append(text(left + 22, at, one.name))
    parts.append("</g>")
    return parts
