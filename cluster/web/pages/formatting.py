"""Template filters: how dates, durations and JSON look on every page."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from flask import Flask


def when(value: datetime | None) -> str:
    """``2024-01-01 06:00:00`` (UTC, second precision); ``—`` for no date."""
    if value is None:
        return "—"
    return value.strftime("%Y-%m-%d %H:%M:%S")


def duration(value: float | timedelta | None) -> str:
    """``1h 2m 3s`` style; ``—`` for no duration."""
    if value is None:
        return "—"
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if seconds < 60:
        return f"{seconds:.1f}s" if seconds < 10 else f"{seconds:.0f}s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    parts = [(days, "d"), (hours, "h"), (minutes, "m"), (secs, "s")]
    return " ".join(f"{n}{unit}" for n, unit in parts if n)


def pretty_json(value: Any) -> str:
    """Indented JSON for conf, params and rendered fields; strings are shown as they are."""
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, sort_keys=True, default=str)


def install_filters(app: Flask) -> None:
    app.jinja_env.filters["when"] = when
    app.jinja_env.filters["duration"] = duration
    app.jinja_env.filters["pretty_json"] = pretty_json
