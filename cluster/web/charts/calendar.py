"""The calendar: a year of days, each coloured by the state of that day's runs.

A column per week (Monday first), a row per weekday, like a contribution chart. A day
with a failed run is failed (and carries a cross, so it is not told by colour alone),
else one with a running or queued run shows that, else success when every run
succeeded; a day with no run is blank. Each day's ``<title>`` counts its runs by state.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta

from cluster.web.charts.svg import esc, frame, num, state_legend, text

CELL = 13
GAP = 2
LEFT = 34
TOP = 22
#: which state a day shows when its runs differ, most urgent first
PRECEDENCE = ("failed", "running", "queued", "success")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def day_state(counts: Mapping[str, int]) -> str:
    """The one state a day of runs shows (see :data:`PRECEDENCE`); ``none`` for no runs."""
    present = {state for state, n in counts.items() if n}
    for state in PRECEDENCE:
        if state in present:
            return state
    return next(iter(sorted(present)), "none")


def day_title(day: date, counts: Mapping[str, int]) -> str:
    runs = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()) if n)
    return f"{day.isoformat()}: {runs or 'no runs'}"


def draw_calendar(year: int, days: Mapping[date, Mapping[str, int]]) -> str:
    """The SVG of ``year``; ``days`` maps a date to its runs' counts by state."""
    first = date(year, 1, 1)
    start = first - timedelta(days=first.weekday())  # the Monday on or before 1 January
    weeks = (date(year, 12, 31) - start).days // 7 + 1
    width = LEFT + weeks * (CELL + GAP) + 10
    height = TOP + 7 * (CELL + GAP) + 34
    body = [text(0, TOP + CELL - 2 + (CELL + GAP) * row, name, css="weekday")
            for row, name in ((0, "Mon"), (2, "Wed"), (4, "Fri"))]  # fmt: skip
    day = first
    while day.year == year:
        column = (day - start).days // 7
        x = LEFT + column * (CELL + GAP)
        y = TOP + day.weekday() * (CELL + GAP)
        if day.day == 1:
            body.append(text(x, TOP - 8, _MONTHS[day.month - 1], css="month"))
        body.append(_cell(day, days.get(day, {}), x, y))
        day += timedelta(days=1)
    body += state_legend(LEFT, height - 8, ("success", "failed", "running", "queued"))
    ran = sum(1 for d, c in days.items() if d.year == year and any(c.values()))
    return frame(
        width, height, body, kind="calendar", label=f"Runs in {year}: {ran} days with runs"
    )


def _cell(day: date, counts: Mapping[str, int], x: float, y: float) -> str:
    state = day_state(counts)
    klass = "day empty" if state == "none" else f"day state-{esc(state)}"
    cell = (
        f'<rect class="{klass}" data-date="{day.isoformat()}" x="{num(x)}" y="{num(y)}" '
        f'width="{CELL}" height="{CELL}"><title>{esc(day_title(day, counts))}</title></rect>'
    )
    if state != "failed":
        return cell
    cross = (
        f'<path class="mark" d="M{num(x + 3)} {num(y + 3)}l7 7m-7 0l7 -7"><title>'
        f"{esc(day_title(day, counts))}</title></path>"
    )
    return cell + cross
