"""Waiting in tests: poll a condition until it holds, with a deadline (never a bare sleep)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import requests

T = TypeVar("T")


def wait_for(
    condition: Callable[[], T],
    *,
    timeout: float,
    interval: float = 0.1,
    message: str | Callable[[], str] = "condition",
) -> T:
    """Poll ``condition`` until it returns something truthy, and return that.

    :param message: what was awaited (or a function that says so, called only on
        failure, e.g. to add a log's tail).
    :raises AssertionError: after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            text = message() if callable(message) else message
            raise AssertionError(f"timed out after {timeout:g} s waiting for {text}")
        time.sleep(interval)


def answers_ok(url: str) -> bool:
    """Whether ``GET url`` answers 200 now (a refused or slow connection is a no)."""
    try:
        return requests.get(url, timeout=5).status_code == 200
    except requests.RequestException:
        return False
