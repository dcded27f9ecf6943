"""The timetables of data-aware DAGs: ``schedule=[datasets]`` and ``DatasetOrTimeSchedule``.

Neither creates a run from time on its own account when given only datasets: the
scheduler creates a ``dataset_triggered`` run when the condition holds (see
:mod:`cluster.policy.datasets`). :class:`DatasetOrTimeSchedule` also runs on its inner
timetable. The condition travels as its JSON form (:func:`condition_to_dict`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, ClassVar

from cluster.errors import DagDefinitionError
from cluster.sdk.datasets import BaseDataset, as_condition, condition_to_dict
from cluster.sdk.timetable_base import DagRunInfo, DataInterval, TimeRestriction, Timetable


class DatasetTriggeredTimetable(Timetable):
    """``schedule=[...]`` of datasets or a condition: runs only when its datasets update."""

    can_be_scheduled: ClassVar[bool] = False
    periodic: ClassVar[bool] = False
    description: str = "Triggered by datasets"

    def __init__(self, datasets: BaseDataset | Iterable[BaseDataset]) -> None:
        self.dataset_condition = as_condition(datasets)

    @property
    def condition(self) -> dict[str, Any]:
        """The condition's JSON form, as the scheduler evaluates it."""
        return condition_to_dict(self.dataset_condition)

    @property
    def summary(self) -> str | None:
        if next(self.dataset_condition.iter_datasets(), None) is None:
            return "Unresolved DatasetAlias"
        return "Dataset"

    def next_dagrun_info(
        self,
        *,
        last_automated_data_interval: DataInterval | None,
        restriction: TimeRestriction,
        now: datetime | None = None,
    ) -> DagRunInfo | None:
        return None


class DatasetOrTimeSchedule(DatasetTriggeredTimetable):
    """Runs on ``timetable`` and also whenever ``datasets`` are ready (Airflow 2.9+)."""

    def __init__(
        self, *, timetable: Timetable, datasets: BaseDataset | Iterable[BaseDataset]
    ) -> None:
        super().__init__(datasets)
        self.timetable = timetable
        self.description = f"Triggered by datasets or {timetable.description}"
        self.periodic = timetable.periodic  # type: ignore[misc]
        self.can_be_scheduled = timetable.can_be_scheduled  # type: ignore[misc]
        self.active_runs_limit = timetable.active_runs_limit  # type: ignore[misc]

    def validate(self) -> None:
        if isinstance(self.timetable, DatasetTriggeredTimetable):
            raise DagDefinitionError("cannot nest dataset timetables")
        self.timetable.validate()

    @property
    def summary(self) -> str | None:
        return f"Dataset or {self.timetable.summary}"

    def infer_manual_data_interval(self, run_after: datetime) -> DataInterval:
        return self.timetable.infer_manual_data_interval(run_after)

    def next_dagrun_info(
        self,
        *,
        last_automated_data_interval: DataInterval | None,
        restriction: TimeRestriction,
        now: datetime | None = None,
    ) -> DagRunInfo | None:
        return self.timetable.next_dagrun_info(
            last_automated_data_interval=last_automated_data_interval,
            restriction=restriction,
            now=now,
        )


def dataset_condition_of(timetable: Timetable) -> dict[str, Any] | None:
    """The JSON condition of a data-aware timetable, ``None`` for a time-only one."""
    if isinstance(timetable, DatasetTriggeredTimetable):
        return timetable.condition
    return None
