"""``outlet_events`` in a task's context, and the events a successful try emits.

A task sets ``outlet_events[dataset].extra`` (or yields :class:`Metadata` from a
TaskFlow function) to attach data to the event of an outlet, and calls
``outlet_events[alias].add(dataset, extra)`` to emit an event through an alias. When
the try succeeds, :func:`events_to_emit` lists the events, which the runner records in
the transaction that records the success (Airflow's ``_register_dataset_changes_in_db``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from cluster.sdk.datasets import Dataset, DatasetAlias, Metadata, event_key
from cluster.sdk.runtime import RuntimeNotConnected, current_runtime


@dataclass
class OutletEventAccessor:
    """The event-to-be of one outlet: its ``extra``, and for an alias the datasets added."""

    raw_key: str | Dataset | DatasetAlias
    extra: dict[str, Any] = field(default_factory=dict)
    dataset_alias_events: list[dict[str, Any]] = field(default_factory=list)

    def add(self, dataset: Dataset | str, extra: dict[str, Any] | None = None) -> None:
        """Emit an event of ``dataset`` through this alias."""
        uri = dataset.uri if isinstance(dataset, Dataset) else str(dataset)
        alias = self.raw_key.name if isinstance(self.raw_key, DatasetAlias) else self.raw_key
        if not isinstance(alias, str):
            return
        self.dataset_alias_events.append(
            {"source_alias_name": alias, "dest_dataset_uri": uri, "extra": dict(extra or {})}
        )


class OutletEventAccessors(Mapping[str, OutletEventAccessor]):
    """``outlet_events[dataset or alias]``: created on first access, as in Airflow."""

    def __init__(self) -> None:
        self._dict: dict[str, OutletEventAccessor] = {}

    def __iter__(self) -> Iterator[str]:
        return iter(self._dict)

    def __len__(self) -> int:
        return len(self._dict)

    def __getitem__(self, key: str | Dataset | DatasetAlias) -> OutletEventAccessor:
        name = event_key(key)
        if name not in self._dict:
            self._dict[name] = OutletEventAccessor(raw_key=key)
        return self._dict[name]


def events_to_emit(outlets: Any, accessors: OutletEventAccessors) -> list[dict[str, Any]]:
    """``[{"uri", "extra", "alias"}]`` for a try that succeeded with these outlets.

    A dataset outlet emits one event with the extra the task set; an alias outlet emits
    one per dataset added through it (the same dataset and extra through two aliases
    is one event naming the first alias, as in Airflow).
    """
    items = outlets if isinstance(outlets, list | tuple | set) else [outlets]
    events: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    for outlet in items:
        if isinstance(outlet, Dataset):
            extra = dict(accessors[outlet].extra) if outlet.uri in accessors else {}
            events.append({"uri": outlet.uri, "extra": extra, "alias": None})
        elif isinstance(outlet, DatasetAlias) and outlet.name in accessors:
            for added in accessors[outlet].dataset_alias_events:
                key = (added["dest_dataset_uri"], repr(sorted(added["extra"].items())))
                if key in seen:
                    continue
                seen.add(key)
                events.append(
                    {
                        "uri": added["dest_dataset_uri"],
                        "extra": added["extra"],
                        "alias": outlet.name,
                    }
                )
    return events


def call_collecting_metadata(
    func: Callable[..., Any], accessors: OutletEventAccessors | None, *args: Any, **kwargs: Any
) -> Any:
    """Call ``func``; a generator function is exhausted, each :class:`Metadata` it yields
    feeding ``outlet_events``, and its ``return`` value is the result (Airflow's
    ``ExecutionCallableRunner``)."""
    if not inspect.isgeneratorfunction(func):
        return func(*args, **kwargs)
    generator = func(*args, **kwargs)
    while True:
        try:
            item = next(generator)
        except StopIteration as stop:
            return stop.value
        if isinstance(item, Metadata) and accessors is not None:
            accessors[item.uri].extra.update(item.extra)
            if item.alias_name:
                accessors[item.alias_name].add(item.uri, extra=item.extra)


# --- what a task reads: inlet_events and triggering_dataset_events -----------------------


@dataclass(frozen=True)
class DatasetRef:
    """``event.dataset`` of an event: the dataset by URI."""

    uri: str


@dataclass(frozen=True)
class DatasetEventInfo:
    """One recorded dataset event as task code sees it (Airflow's ``DatasetEvent`` row)."""

    id: int
    dataset: DatasetRef
    extra: dict[str, Any]
    timestamp: Any
    source_dag_id: str | None = None
    source_task_id: str | None = None
    source_run_id: str | None = None
    source_map_index: int | None = None

    @property
    def uri(self) -> str:
        return self.dataset.uri


def _load(**query: Any) -> list[DatasetEventInfo]:
    """Events through the runtime; none when the runtime cannot read them (tests)."""
    reader = getattr(_runtime_or_none(), "get_dataset_events", None)
    if reader is None:
        return []
    return [_event(row) for row in reader(**query)]


def _event(row: dict[str, Any]) -> DatasetEventInfo:
    fields = {k: v for k, v in row.items() if k != "uri"}
    return DatasetEventInfo(**fields, dataset=DatasetRef(row["uri"]))


def _runtime_or_none() -> Any:
    try:
        return current_runtime()
    except RuntimeNotConnected:
        return None


class InletEventAccessors(Mapping[Any, list[DatasetEventInfo]]):
    """``inlet_events[dataset]``: the dataset's events, oldest first (also by index
    into ``inlets``, or by alias for the events emitted through it). Read when asked."""

    def __init__(self, inlets: list[Any]) -> None:
        self._inlets = inlets
        self._keys = [event_key(i) for i in inlets if isinstance(i, Dataset | DatasetAlias)]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __getitem__(self, key: Any) -> list[DatasetEventInfo]:
        target = self._inlets[key] if isinstance(key, int) else key
        if isinstance(target, DatasetAlias):
            return _load(alias=target.name)
        if isinstance(target, Dataset | str):
            return _load(uri=event_key(target))
        raise KeyError(key)


class TriggeringDatasetEvents(Mapping[str, list[DatasetEventInfo]]):
    """``triggering_dataset_events``: URI → the events that triggered this run (empty
    for a run that datasets did not trigger). Read on first access."""

    def __init__(self, dag_id: str, run_id: str) -> None:
        self._run = (dag_id, run_id)
        self._events: dict[str, list[DatasetEventInfo]] | None = None

    def _loaded(self) -> dict[str, list[DatasetEventInfo]]:
        if self._events is None:
            by_uri: dict[str, list[DatasetEventInfo]] = {}
            for event in _load(dag_id=self._run[0], run_id=self._run[1]):
                by_uri.setdefault(event.uri, []).append(event)
            self._events = by_uri
        return self._events

    def __iter__(self) -> Iterator[str]:
        return iter(self._loaded())

    def __len__(self) -> int:
        return len(self._loaded())

    def __getitem__(self, uri: str) -> list[DatasetEventInfo]:
        return self._loaded()[uri]
