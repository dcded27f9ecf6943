"""Airflow's template macros and filters, available as ``macros.*`` and ``| ds`` etc."""

from __future__ import annotations

import datetime as _dt
import json
import random as _random
import time
import types
import uuid
from collections.abc import Callable
from typing import Any

from cluster.sdk.plugins import plugin_macros


def ds_add(ds: str, days: int) -> str:
    """Add (or subtract) days from a ``YYYY-MM-DD`` string: ``ds_add('2015-01-01', 5)``."""
    if not days:
        return str(ds)
    value = _dt.datetime.strptime(str(ds), "%Y-%m-%d") + _dt.timedelta(days=days)
    return value.strftime("%Y-%m-%d")


def ds_format(ds: str, input_format: str, output_format: str) -> str:
    """Reformat a date string: ``ds_format('2015-01-01', '%Y-%m-%d', '%m-%d-%y')``."""
    return _dt.datetime.strptime(str(ds), input_format).strftime(output_format)


def datetime_diff_for_humans(dt: _dt.datetime, since: _dt.datetime | None = None) -> str:
    since = since or _dt.datetime.now(dt.tzinfo)
    seconds = int((since - dt).total_seconds())
    return f"{abs(seconds)} seconds {'ago' if seconds >= 0 else 'from now'}"


def build_macros(extra: dict[str, Any] | None = None) -> types.SimpleNamespace:
    """A fresh ``macros`` namespace: Airflow's, each plugin's as ``macros.<plugin name>``,
    and ``extra`` (user macros are also added by the DAG's environment)."""
    namespace = types.SimpleNamespace(
        ds_add=ds_add,
        ds_format=ds_format,
        datetime=_dt.datetime,
        timedelta=_dt.timedelta,
        time=time,
        uuid=uuid,
        random=_random.random,
        json=json,
        datetime_diff_for_humans=datetime_diff_for_humans,
    )
    for name, functions in plugin_macros().items():
        setattr(namespace, name, functions)
    for key, value in (extra or {}).items():
        setattr(namespace, key, value)
    return namespace


def _ds(value: _dt.datetime | None) -> str | None:
    return value.strftime("%Y-%m-%d") if value is not None else None


def _ds_nodash(value: _dt.datetime | None) -> str | None:
    return value.strftime("%Y%m%d") if value is not None else None


def _ts(value: _dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _ts_nodash(value: _dt.datetime | None) -> str | None:
    return value.strftime("%Y%m%dT%H%M%S") if value is not None else None


def _ts_nodash_with_tz(value: _dt.datetime | None) -> str | None:
    if value is None:
        return None
    return value.isoformat().replace("-", "").replace(":", "")


FILTERS: dict[str, Callable[[Any], Any]] = {
    "ds": _ds,
    "ds_nodash": _ds_nodash,
    "ts": _ts,
    "ts_nodash": _ts_nodash,
    "ts_nodash_with_tz": _ts_nodash_with_tz,
}
