"""The serialized form of a DAG: what the scheduler and the webservers work from.

Neither ever imports a DAG file: ``cluster.dagfiles`` turns each DAG object into a
:class:`SerializedDag`, stores its JSON in ``serialized_dag`` and fingerprints it.
The JSON is versioned; ``to_json → from_json → to_json`` is the identity.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from cluster.errors import DagDefinitionError

FORMAT_VERSION = 1


@dataclass(frozen=True)
class SerializedTask:
    """One task as the scheduler sees it: identity, edges and scheduling knobs.

    Durations are seconds (``float``) or ``None``.
    """

    task_id: str
    operator: str
    trigger_rule: str = "all_success"
    upstream_task_ids: tuple[str, ...] = ()
    downstream_task_ids: tuple[str, ...] = ()
    retries: int = 0
    retry_delay: float = 300.0
    retry_exponential_backoff: bool = False
    max_retry_delay: float | None = None
    execution_timeout: float | None = None
    pool: str = "default_pool"
    pool_slots: int = 1
    #: ``None``: the cluster's ``celery.default_queue`` (filled in by the scheduler)
    queue: str | None = None
    priority_weight: int = 1
    weight_rule: str = "downstream"
    depends_on_past: bool = False
    #: ``None`` for plain tasks, ``"poke"`` or ``"reschedule"`` for sensors
    sensor_mode: str | None = None
    task_group_id: str | None = None
    template_fields: tuple[str, ...] = ()
    doc_md: str | None = None
    owner: str = "airflow"
    has_callbacks: bool = False
    #: display extras: ui colours, TaskFlow/bash flavour, ...
    extra: dict[str, Any] = field(default_factory=dict)
    #: a setup task: work downstream of it waits for it (see :mod:`cluster.policy.setup_teardown`)
    is_setup: bool = False
    #: a teardown task: runs after its work even when it failed; ignored for the run's state
    is_teardown: bool = False
    #: a teardown whose failure does fail the run
    on_failure_fail_dagrun: bool = False
    #: how a mapped task expands (``None``: not mapped): ``{"kind": "dict-of-lists",
    #: "args": {name: ref}}`` or ``{"kind": "list-of-dicts", "arg": ref}``, where a ref is
    #: ``{"type": "literal", "length": n, "value": ...}``, ``{"type": "xcom", "task_id",
    #: "key"}``, or ``map``/``zip``/``concat`` over refs (see :mod:`cluster.policy.mapping`)
    mapping: dict[str, Any] | None = None
    #: a mapped task or group expands over this task's return value: its runner checks
    #: the value and records its length (Airflow's ``task_map``)
    feeds_mapping: bool = False
    #: the task's ``sla`` in seconds (``None``: none); checked by :mod:`cluster.dagfiles.slas`
    sla: float | None = None
    #: at most this many of the task's instances queued or running over all the DAG's
    #: runs, each mapped instance counting (``None``: no cap; see :mod:`cluster.policy.fit`)
    max_active_tis_per_dag: int | None = None
    #: the same cap within one run
    max_active_tis_per_dagrun: int | None = None


@dataclass(frozen=True)
class SerializedDag:
    """One DAG's structure and schedule, independent of its Python file."""

    dag_id: str
    fileloc: str
    #: ``cluster.sdk.timetables.timetable_to_dict`` of the DAG's timetable
    timetable: dict[str, Any]
    #: a human summary of the schedule: ``"@daily"``, ``"0 6 * * 1"``, ``"1:00:00"``, ``None``
    schedule: str | None
    timezone: str = "UTC"
    start_date: datetime | None = None
    end_date: datetime | None = None
    catchup: bool = False
    max_active_runs: int = 16
    max_active_tasks: int = 16
    dagrun_timeout: float | None = None
    tags: tuple[str, ...] = ()
    description: str | None = None
    doc_md: str | None = None
    owner: str = "airflow"
    #: ``{name: Param.dump()}``: default, type, enum, minimum, maximum, description
    params: dict[str, Any] = field(default_factory=dict)
    #: ``{group_id: {"tooltip": ..., "parent": ..., "mapping": ...}}`` (``mapping`` only
    #: for a mapped task group, in the form of :attr:`SerializedTask.mapping`)
    task_groups: dict[str, Any] = field(default_factory=dict)
    #: ``{"up_id>down_id": label}``
    edge_labels: dict[str, str] = field(default_factory=dict)
    has_callbacks: bool = False
    tasks: dict[str, SerializedTask] = field(default_factory=dict)
    #: ``dag_display_name`` when it differs from the id (left out of the JSON otherwise,
    #: so DAGs without one keep their fingerprints)
    display_name: str | None = None

    # --- graph helpers used by the scheduler and the web UI ---------------------

    def roots(self) -> list[str]:
        return [t.task_id for t in self.tasks.values() if not t.upstream_task_ids]

    def leaves(self) -> list[str]:
        return [t.task_id for t in self.tasks.values() if not t.downstream_task_ids]

    def task_display_name(self, task_id: str) -> str:
        """What the UI shows for ``task_id``: its ``task_display_name``, else the id."""
        task = self.tasks.get(task_id)
        return str(task.extra.get("display_name") or task_id) if task else task_id

    @functools.cached_property
    def mapped_groups(self) -> dict[str, tuple[str, ...]]:
        """``task_id → ids of the mapped task groups around it``, innermost first; only
        tasks inside at least one mapped group are listed."""
        found: dict[str, tuple[str, ...]] = {}
        for task in self.tasks.values():
            groups: list[str] = []
            group_id = task.task_group_id
            while group_id is not None:
                group = self.task_groups.get(group_id, {})
                if group.get("mapping") is not None:
                    groups.append(group_id)
                group_id = group.get("parent")
            if groups:
                found[task.task_id] = tuple(groups)
        return found

    @functools.cached_property
    def has_mapping(self) -> bool:
        """Whether any task is mapped or inside a mapped group: only then does the
        scheduler load map lengths and look at map indexes."""
        return bool(self.mapped_groups) or any(t.mapping for t in self.tasks.values())

    @functools.cached_property
    def uses_past(self) -> bool:
        """Whether any task ``depends_on_past``: only then does the scheduler read the
        previous run's states (asked each iteration, for each running run)."""
        return any(t.depends_on_past for t in self.tasks.values())

    # --- JSON ---------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        # shallow on purpose: dataclasses.asdict deep-copies every value, which made
        # fingerprinting a 1,000-task DAG cost a quarter of a second
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        for key in ("start_date", "end_date"):
            value = data[key]
            data[key] = value.isoformat() if value is not None else None
        data["tags"] = list(self.tags)
        data["tasks"] = [_task_to_dict(t) for t in self.tasks.values()]
        if data["display_name"] is None:
            del data["display_name"]
        return {"version": FORMAT_VERSION, "dag": data}

    def to_json(self) -> str:
        """Canonical JSON: sorted keys, no spaces, so equal DAGs give equal bytes."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), default=str)

    def fingerprint(self) -> str:
        """A hash of the serialized form: changes exactly when the structure changes."""
        return fingerprint_of(self.to_json())

    @classmethod
    def from_dict(cls, payload: dict[str, Any]) -> SerializedDag:
        data = dict(_dag_of(payload))
        for key in ("start_date", "end_date"):
            if data.get(key) is not None:
                data[key] = datetime.fromisoformat(data[key])
        data["tags"] = tuple(data.get("tags", ()))
        data["tasks"] = {t["task_id"]: _task_from_dict(t) for t in data.get("tasks", [])}
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> SerializedDag:
        return cls.from_dict(json.loads(text))


@dataclass(frozen=True)
class DagSummary:
    """What ``tradewind dags list`` shows of a serialized DAG: the same values as
    :class:`SerializedDag`'s, read without building its tasks (which took most of the
    listing's CPU with a thousand DAGs)."""

    schedule: str | None
    task_count: int
    tags: tuple[str, ...]


def summary_from_json(text: str) -> DagSummary:
    """The :class:`DagSummary` of a :meth:`SerializedDag.to_json` text.

    :raises DagDefinitionError: when the text is of another format version.
    """
    data = _dag_of(json.loads(text))
    return DagSummary(
        schedule=data["schedule"],
        task_count=len({t["task_id"] for t in data.get("tasks", [])}),
        tags=tuple(data.get("tags", ())),
    )


def _dag_of(payload: dict[str, Any]) -> dict[str, Any]:
    if payload.get("version") != FORMAT_VERSION:
        raise DagDefinitionError(
            f"serialized DAG has format version {payload.get('version')!r}, "
            f"this Tradewind reads {FORMAT_VERSION}: run 'tradewind dags reserialize'"
        )
    dag: dict[str, Any] = payload["dag"]
    return dag


def fingerprint_of(text: str) -> str:
    """The fingerprint of the DAG whose :meth:`SerializedDag.to_json` is ``text``, without
    decoding it (DAG processing stores the JSON its children send as it is)."""
    return hashlib.sha256(text.encode()).hexdigest()[:32]


_TUPLE_FIELDS = ("upstream_task_ids", "downstream_task_ids", "template_fields")
#: written only when set, so DAGs without these features keep the fingerprints they had
_OPTIONAL: dict[str, Any] = {
    "is_setup": False,
    "is_teardown": False,
    "on_failure_fail_dagrun": False,
    "mapping": None,
    "feeds_mapping": False,
    "sla": None,
    "max_active_tis_per_dag": None,
    "max_active_tis_per_dagrun": None,
}


def _task_to_dict(task: SerializedTask) -> dict[str, Any]:
    # its fields are all it holds (no cached property, no slots): copying its
    # ``__dict__`` costs half of a getattr per field (a 1,000-task DAG is
    # fingerprinted by every pool process that imports it)
    data = dict(task.__dict__)
    for key in _TUPLE_FIELDS:
        data[key] = list(data[key])
    for key, default in _OPTIONAL.items():
        if data[key] == default:
            del data[key]
    return data


def _task_from_dict(data: dict[str, Any]) -> SerializedTask:
    data = dict(data)
    for key in _TUPLE_FIELDS:
        data[key] = tuple(data.get(key, ()))
    return SerializedTask(**data)
