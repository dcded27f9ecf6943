"""The small pieces every chart is drawn from: escaping, scales, ticks and labels."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

#: the states a legend lists, in the order people read them
LEGEND_STATES = (
    "success",
    "running",
    "failed",
    "upstream_failed",
    "up_for_retry",
    "queued",
    "scheduled",
    "skipped",
)
#: steps (seconds) a time axis may use, so ticks fall on round durations
_TIME_STEPS = (
    1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400,
)  # fmt: skip


#: text with none of the characters :func:`esc` replaces (the common case: ids)
_PLAIN = re.compile(r"[^&<>\"']*")


def esc(value: object) -> str:
    """``value`` as text safe in SVG content and attribute values (quickly when it
    needs no escaping: a big chart escapes thousands of ids)."""
    text = str(value)
    return text if _PLAIN.fullmatch(text) else escape(text, quote=True)


def num(value: float) -> str:
    """A coordinate, short (one decimal at most)."""
    rounded = round(value, 1)
    return str(int(rounded)) if rounded == int(rounded) else str(rounded)


def frame(width: float, height: float, body: Sequence[str], *, kind: str, label: str) -> str:
    """The ``<svg>`` element around ``body``; ``label`` is what a screen reader says."""
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart {esc(kind)}" '
        f'width="{num(width)}" height="{num(height)}" viewBox="0 0 {num(width)} {num(height)}" '
        f'role="img" aria-label="{esc(label)}">' + "".join(body) + "</svg>"
    )


@dataclass(frozen=True, slots=True)
class Scale:
    """A linear map of ``[low, high]`` onto pixels ``[start, end]``."""

    low: float
    high: float
    start: float
    end: float

    def __call__(self, value: float) -> float:
        span = self.high - self.low
        if span <= 0:
            return self.start
        return self.start + (value - self.low) * (self.end - self.start) / span


def nice_ticks(high: float, count: int = 5) -> list[float]:
    """Round values from 0 to at least ``high``: steps of 1, 2 or 5 times a power of ten."""
    if high <= 0:
        return [0.0, 1.0]
    raw = high / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    last = math.ceil(high / step - 1e-9)
    return [i * step for i in range(last + 1)]


def time_ticks(seconds: float, count: int = 6) -> list[float]:
    """Offsets from 0 to at least ``seconds`` on round durations (1 s, 5 min, 1 h, ...)."""
    if seconds <= 0:
        return [0.0, 1.0]
    raw = seconds / count
    step = next((s for s in _TIME_STEPS if s >= raw), None)
    if step is None:
        step = 86400 * math.ceil(raw / 86400)
    last = math.ceil(seconds / step - 1e-9)
    return [float(i * step) for i in range(last + 1)]


def duration_text(seconds: float) -> str:
    """``850 ms``, ``12.5 s``, ``4 min 5 s``, ``2 h 3 min``, ``3 d 4 h``."""
    if seconds < 0:
        return "-" + duration_text(-seconds)
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{minutes} min {secs} s" if secs else f"{minutes} min"


def text(x: float, y: float, content: str, *, css: str = "", anchor: str = "start") -> str:
    """A ``<text>`` element; ``content`` is escaped here."""
    klass = f' class="{css}"' if css else ""
    return f'<text x="{num(x)}" y="{num(y)}" text-anchor="{anchor}"{klass}>{esc(content)}</text>'


def state_legend(x: float, y: float, states: Sequence[str] = LEGEND_STATES) -> list[str]:
    """A row of swatches, each named by its state, so the colours can be read."""
    parts = ['<g class="legend">']
    for state in states:
        parts.append(
            f'<rect class="state-{esc(state)}" x="{num(x)}" y="{num(y - 9)}" width="10" height="10">'
            f"<title>{esc(state)}</title></rect>"
        )
        parts.append(text(x + 14, y, state))
        x += 24 + 7 * len(state)
    parts.append("</g>")
    return parts
