"""Request and response schemas of the DAG, run, task-instance and XCom endpoints.

Shapes follow Airflow's stable REST API where that is reasonable (``dag_run_id``,
``total_entries``, ``tags: [{"name"}]``), so existing clients keep working. Input
models forbid unknown fields (``additionalProperties: false`` in the OpenAPI
document); query models ignore them, as browsers and proxies add their own.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from cluster.states import DagRunState, TaskState

MAX_PAGE = 100
#: the largest integer every metastore column takes (SQLite and MySQL INT)
MAX_INT = 2**31 - 1
ID_PATTERN = r"^[A-Za-z0-9_.~:+\-]+$"


class Body(BaseModel):
    """Base of request bodies: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid")


class Page(BaseModel):
    """Pagination shared by every list endpoint."""

    limit: int = Field(MAX_PAGE, ge=1, le=MAX_PAGE, description="Items per page (at most 100).")
    offset: int = Field(0, ge=0, le=MAX_INT, description="Items to skip.")


# --- DAGs ---------------------------------------------------------------------------


class DagTag(BaseModel):
    name: str


class Dag(BaseModel):
    dag_id: str
    description: str | None
    fileloc: str
    is_paused: bool
    is_active: bool
    owners: list[str]
    tags: list[DagTag]
    timetable_description: str | None
    max_active_runs: int | None
    max_active_tasks: int | None
    next_dagrun: AwareDatetime | None
    next_dagrun_data_interval_start: AwareDatetime | None
    next_dagrun_data_interval_end: AwareDatetime | None
    next_dagrun_create_after: AwareDatetime | None
    last_parsed_time: AwareDatetime | None
    fingerprint: str | None


class DagCollection(BaseModel):
    dags: list[Dag]
    total_entries: int


class DagListQuery(Page):
    tags: list[str] | None = Field(None, description="Only DAGs with any of these tags.")
    paused: bool | None = Field(None, description="Only paused (true) or unpaused (false) DAGs.")
    only_active: bool = Field(True, description="Hide DAGs whose file is gone.")
    dag_id_pattern: str | None = Field(None, description="Only DAG ids containing this text.")


class DagPatch(Body):
    is_paused: bool


# --- DAG runs -----------------------------------------------------------------------


class DagRun(BaseModel):
    dag_run_id: str
    dag_id: str
    logical_date: AwareDatetime | None
    execution_date: AwareDatetime | None = Field(description="Airflow 2 name of logical_date.")
    data_interval_start: AwareDatetime | None
    data_interval_end: AwareDatetime | None
    queued_at: AwareDatetime | None
    start_date: AwareDatetime | None
    end_date: AwareDatetime | None
    last_scheduling_decision: AwareDatetime | None
    state: DagRunState
    run_type: str
    external_trigger: bool
    conf: dict[str, Any]
    clear_number: int


class DagRunCollection(BaseModel):
    dag_runs: list[DagRun]
    total_entries: int


class DagRunListQuery(Page):
    state: list[DagRunState] | None = Field(None, description="Only runs in these states.")
    logical_date_gte: AwareDatetime | None = None
    logical_date_lte: AwareDatetime | None = None
    order_by: Literal["id", "-id", "logical_date", "-logical_date"] = "id"


class TriggerDagRun(Body):
    dag_run_id: str | None = Field(None, max_length=250, pattern=ID_PATTERN)
    logical_date: AwareDatetime | None = None
    conf: dict[str, Any] | None = Field(None, description="Run parameters, checked by the DAG.")


class DagRunPatch(Body):
    state: Literal["success", "failed"]


class ClearDagRun(Body):
    dry_run: bool = Field(True, description="Only list what would be cleared.")
    only_failed: bool = False


# --- task instances -------------------------------------------------------------------


class TaskInstanceReference(BaseModel):
    task_id: str
    dag_id: str
    dag_run_id: str
    map_index: int


class TaskInstanceReferenceCollection(BaseModel):
    task_instances: list[TaskInstanceReference]
    total_entries: int


class TaskInstance(BaseModel):
    task_id: str
    dag_id: str
    dag_run_id: str
    map_index: int
    state: TaskState
    try_number: int
    max_tries: int
    start_date: AwareDatetime | None
    end_date: AwareDatetime | None
    duration: float | None
    hostname: str | None
    pid: int | None
    pool: str
    pool_slots: int
    queue: str
    priority_weight: int
    operator: str | None
    queued_when: AwareDatetime | None
    next_try_at: AwareDatetime | None
    rendered_fields: dict[str, Any] | None
    #: a mapped instance's ``map_index_template``, rendered after it ran
    rendered_map_index: str | None = None


class TaskInstanceCollection(BaseModel):
    task_instances: list[TaskInstance]
    total_entries: int


class TaskInstanceListQuery(Page):
    state: list[TaskState] | None = Field(None, description="Only instances in these states.")


class MapIndexQuery(BaseModel):
    map_index: int = Field(
        -1, ge=-1, le=MAX_INT, description="The mapped instance; -1 when not mapped."
    )


class TaskInstancePatch(Body):
    new_state: Literal["success", "failed", "skipped"]
    dry_run: bool = False


class ClearTaskInstances(Body):
    dry_run: bool = Field(True, description="Only list what would be cleared.")
    task_ids: list[str] | None = Field(None, description="These tasks only (default: all).")
    dag_run_id: str | None = Field(None, description="This run only.")
    start_date: AwareDatetime | None = Field(None, description="Runs from this logical date.")
    end_date: AwareDatetime | None = Field(None, description="Runs up to this logical date.")
    only_failed: bool = True
    include_upstream: bool = False
    include_downstream: bool = False


class LogQuery(MapIndexQuery):
    offset: int = Field(
        0, ge=0, le=2**53, description="Byte to read from: the previous answer's next_offset."
    )


class TaskInstanceLog(BaseModel):
    """A piece of one try's log; ask again from ``next_offset`` to follow a running try."""

    try_number: int
    content: str = Field(description="Log text from offset up to next_offset.")
    offset: int
    next_offset: int
    source: Literal["local", "remote", "missing", "unreachable"] = Field(
        description="This webserver's disk, the worker's log server, no log yet, or a "
        "worker whose log server cannot be reached (see message)."
    )
    message: str | None = Field(description="Why there is no text, in words.")
    host: str | None = Field(description="The host that ran the try.")


# --- XComs ------------------------------------------------------------------------------


class XComEntry(BaseModel):
    key: str
    timestamp: AwareDatetime
    dag_id: str
    dag_run_id: str
    task_id: str
    map_index: int


class XComEntryWithValue(XComEntry):
    value: str | None = Field(description="The value as stored: JSON text.")


class XComCollection(BaseModel):
    xcom_entries: list[XComEntry]
    total_entries: int


class XComListQuery(Page):
    map_index: int | None = Field(None, ge=-1, le=MAX_INT, description="Only this mapped instance.")


class Problem(BaseModel):
    """Every error response: what went wrong, in words a user can act on."""

    title: str
    status: int
    detail: str
