"""Which SLA misses a task has: Airflow 2.10's rule, pure.

Airflow's DAG processor (``DagFileProcessor.manage_slas``) takes, for each task with an
``sla``, the run of its latest successful or skipped instance, and walks the
timetable forward from that run's data interval (unrestricted by start date, end date
or catchup): every later logical date ``d`` before now, **from the second on**, with
``d + sla`` in the past is a miss recorded under ``d``. That skips the run right after
the last success and names a miss after the logical date that follows the late run;
Tradewind keeps the rule exactly, so ``sla_miss`` rows and callbacks match Airflow's.
Runs never created (a paused DAG, a stopped scheduler) miss their SLA all the same.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

from cluster.sdk.timetable_base import DagRunInfo
from cluster.sdk.timetables import DataInterval, TimeRestriction, timetable_from_dict

#: Airflow's ``restricted=False``: no start date, no end date, every interval
UNRESTRICTED = TimeRestriction(None, None, True)
#: a walk never records more misses than this for one task in one check
MAX_MISSES_PER_CHECK = 1000


def missed_dates(
    timetable: dict[str, Any],
    last_done: DataInterval,
    sla: timedelta,
    *,
    now: datetime,
    recorded: Collection[datetime] = (),
) -> list[datetime]:
    """The logical dates to record as misses of one task, oldest first.

    :param last_done: the data interval of the run of the task's latest successful
        or skipped instance.
    :param recorded: the logical dates already in ``sla_miss`` for this task.
    """
    table = timetable_from_dict(timetable)

    def step(interval: DataInterval) -> DagRunInfo | None:
        return table.next_dagrun_info(
            last_automated_data_interval=interval, restriction=UNRESTRICTED, now=now
        )

    misses: list[datetime] = []
    info = step(last_done)
    while info is not None and info.logical_date < now and len(misses) < MAX_MISSES_PER_CHECK:
        info = step(info.data_interval)
        if info is None:
            break
        if info.logical_date in recorded:
            continue
        if info.logical_date + sla < now:
            misses.append(info.logical_date)
    return misses
