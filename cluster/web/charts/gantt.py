"""The Gantt chart of one run: per task instance, each try's queued and running spans.

A row per task instance (a mapped task has a row per index), in the order given
(the grid's task order). Each try draws a thin pale bar from ``queued_at`` to its start
and a full bar, coloured by the try's state, from start to end; a try still queued or
running reaches ``now``. Earlier tries come from ``task_instance_history``, which keeps
no queue time, so only their running span shows. Every bar has a ``<title>`` naming the
task, the try, its state and its times.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from cluster.web.charts.svg import (
    Scale,
    duration_text,
    esc,
    frame,
    num,
    state_legend,
    text,
    time_ticks,
)

ROW_HEIGHT = 20
BAR_HEIGHT = 14
LABEL_WIDTH = 240
PLOT_WIDTH = 760
TOP = 28
#: room under the rows for the legend
BOTTOM = 30
#: states in which a try's span is still open at ``now``
OPEN_STATES = frozenset({"running", "queued"})


@dataclass(frozen=True, slots=True)
class Attempt:
    """One try of one task instance, as the Gantt chart needs it."""

    task_id: str
    map_index: int
    try_number: int
    state: str
    queued_at: datetime | None
    start_date: datetime | None
    end_date: datetime | None

    @property
    def key(self) -> tuple[str, int]:
        return self.task_id, self.map_index


def row_label(task_id: str, map_index: int) -> str:
    return task_id if map_index < 0 else f"{task_id} [{map_index}]"


def ordered_rows(attempts: Sequence[Attempt], order: Sequence[str]) -> list[tuple[str, int]]:
    """The rows: task instances in ``order`` (unknown tasks after, by id), then map index."""
    position = {task_id: i for i, task_id in enumerate(order)}
    keys = {a.key for a in attempts}
    return sorted(keys, key=lambda k: (position.get(k[0], len(position)), k[0], k[1]))


def _ends(attempt: Attempt, now: datetime) -> tuple[datetime | None, datetime | None]:
    """Where the try's running span starts and ends (``now`` while it runs)."""
    if attempt.start_date is None:
        return None, None
    end = attempt.end_date
    if end is None and attempt.state in OPEN_STATES:
        end = now
    return attempt.start_date, end or attempt.start_date


def time_range(attempts: Sequence[Attempt], now: datetime) -> tuple[datetime, datetime] | None:
    """The earliest queue or start time and the latest end of the tries, if any began."""
    points: list[datetime] = []
    for attempt in attempts:
        start, end = _ends(attempt, now)
        points += [p for p in (attempt.queued_at, start, end) if p is not None]
        if attempt.queued_at is not None and start is None and attempt.state == "queued":
            points.append(now)
    return (min(points), max(points)) if points else None


def draw_gantt(
    attempts: Sequence[Attempt],
    *,
    order: Sequence[str] = (),
    now: datetime,
    link: Callable[[str, int], str | None] = lambda task_id, map_index: None,
) -> str:
    """The SVG of the run's tries; ``link`` gives each row label's target."""
    rows = ordered_rows(attempts, order)
    span = time_range(attempts, now)
    height = TOP + ROW_HEIGHT * max(len(rows), 1) + BOTTOM
    width = LABEL_WIDTH + PLOT_WIDTH + 20
    body: list[str] = []
    if span is None:
        body.append(text(LABEL_WIDTH, TOP + 14, "No try of this run has been queued yet."))
        return frame(width, height, body, kind="gantt", label="Gantt chart: nothing ran yet")
    first, last = span
    total = max((last - first).total_seconds(), 1.0)
    ticks = time_ticks(total)
    scale = Scale(0.0, ticks[-1], LABEL_WIDTH, LABEL_WIDTH + PLOT_WIDTH)
    body += _axis(ticks, scale, TOP + ROW_HEIGHT * len(rows))
    by_row: dict[tuple[str, int], list[Attempt]] = {}
    for attempt in attempts:
        by_row.setdefault(attempt.key, []).append(attempt)
    for index, key in enumerate(rows):
        y = TOP + ROW_HEIGHT * index
        body.append(_label(key, y, link(*key)))
        for attempt in sorted(by_row[key], key=lambda a: a.try_number):
            body += _bars(attempt, y, first, scale, now)
    body += state_legend(LABEL_WIDTH, height - 8)
    label = f"Gantt chart of {len(rows)} task instances over {duration_text(total)}"
    return frame(width, height, body, kind="gantt", label=label)


def _axis(ticks: list[float], scale: Scale, bottom: float) -> list[str]:
    parts = ['<g class="axis">']
    for tick in ticks:
        x = scale(tick)
        parts.append(f'<line x1="{num(x)}" y1="{TOP - 6}" x2="{num(x)}" y2="{num(bottom)}"/>')
        parts.append(
            text(x, TOP - 10, "0" if tick == 0 else "+" + duration_text(tick), anchor="middle")
        )
    parts.append("</g>")
    return parts


def _label(key: tuple[str, int], y: float, href: str | None) -> str:
    label = text(LABEL_WIDTH - 8, y + 14, row_label(*key), css="row-label", anchor="end")
    return f'<a href="{esc(href)}">{label}</a>' if href else label


def _bars(attempt: Attempt, y: float, first: datetime, scale: Scale, now: datetime) -> list[str]:
    """The try's queued span (pale, thin) and running span (its state's colour)."""
    name = f"{row_label(*attempt.key)} try {attempt.try_number}"
    start, end = _ends(attempt, now)
    parts = []
    queued_end = start or (now if attempt.state == "queued" else None)
    if attempt.queued_at is not None and queued_end is not None and queued_end > attempt.queued_at:
        x0 = scale((attempt.queued_at - first).total_seconds())
        x1 = scale((queued_end - first).total_seconds())
        waited = duration_text((queued_end - attempt.queued_at).total_seconds())
        parts.append(
            f'<rect class="queued-span" x="{num(x0)}" y="{num(y + 7)}" width="{num(max(x1 - x0, 1))}" '
            f'height="6"><title>{esc(name)}: queued for {waited}</title></rect>'
        )
    if start is not None and end is not None:
        x0 = scale((start - first).total_seconds())
        x1 = scale((end - first).total_seconds())
        ran = duration_text((end - start).total_seconds())
        times = f"{start:%H:%M:%S} to {end:%H:%M:%S}"
        parts.append(
            f'<rect class="bar state-{esc(attempt.state)}" data-task-id="{esc(attempt.task_id)}" '
            f'data-try="{attempt.try_number}" x="{num(x0)}" y="{num(y + 3)}" '
            f'width="{num(max(x1 - x0, 2))}" height="{BAR_HEIGHT}">'
            f"<title>{esc(name)}: {esc(attempt.state)}, ran {ran} ({times} UTC)</title></rect>"
        )
    return parts
