"""Commands that run user code or compute schedules prepare the process for it first.

As Airflow does in such processes, the DAG folder and ``core.plugins_folder`` go on
``sys.path`` and the plugins are loaded (their timetables and macros registered): ``dags
trigger`` infers a plugin timetable's data interval, ``dags test`` and ``tasks run``
import DAG files, the scheduler computes schedules. The commands that only read or
administer the metastore skip it, and the SDK and Jinja it imports: ``dags state``, which
scripts poll, stays light.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Concatenate, ParamSpec, TypeVar

from cluster.cli.app import App
from cluster.dagfiles.environment import prepare_user_code

P = ParamSpec("P")
R = TypeVar("R")


def with_user_code(func: Callable[Concatenate[App, P], R]) -> Callable[Concatenate[App, P], R]:
    """Prepare the process for user code (idempotent) before the command runs; put it
    under ``@pass_app``."""

    @functools.wraps(func)
    def wrapper(app: App, *args: P.args, **kwargs: P.kwargs) -> R:
        prepare_user_code(app.settings)
        return func(app, *args, **kwargs)

    return wrapper
