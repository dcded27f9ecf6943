"""Request and response schemas of the DAG, run, task-instance and XCom endpoints.

Shapes follow Airflow's stable REST API where that is reasonable (``dag_run_id``,
``total_entries``, ``tags: [{"name"}]``), so existing clients keep working. Input
models forbid unknown fields (``additionalProperties: false`` in the OpenAPI
document); query models ignore them, as browsers and proxies add their own.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, RootModel, field_validator

from cluster.states import DagRunState, TaskState

MAX_PAGE = 100
#: the largest integer every metastore column takes (SQLite and MySQL INT)
MAX_INT = 2**31 - 1
ID_PATTERN = r"^[A-Za-z0-9_.~:+\-]+$"


class Body(BaseModel):
    """Base of request bodies: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid")


class Page(BaseModel):
    """Pagination shared by every list endpoint.

    A ``limit`` over 100 is lowered to 100, as Airflow lowers it to its
    ``maximum_page_limit``, rather than refused: scripts written for Airflow ask for more.
    """

    limit: int = Field(
        MAX_PAGE, ge=1, le=MAX_INT, description="Items per page (more than 100 reads 100)."
    )
    offset: int = Field(0, ge=0, le=MAX_INT, description="Items to skip.")

    @field_validator("limit")
    @classmethod
    def _at_most_a_page(cls, limit: int) -> int:
        return min(limit, MAX_PAGE)


class Ordered(Page):
    """A list that sorts by ``order_by``: a field name, ``-`` in front for descending."""

    order_by: str | None = Field(
        None, max_length=100, description="Field to sort by; '-field' sorts descending."
    )


# --- DAGs ---------------------------------------------------------------------------


class DagTag(BaseModel):
    name: str


class CronExpression(BaseModel):
    """Airflow's ``schedule_interval`` of a cron schedule."""

    type_: Literal["CronExpression"] = Field("CronExpression", alias="__type")
    value: str


class Dag(BaseModel):
    """A DAG with Airflow's fields; those of features Tradewind lacks (SubDAGs, pickling)
    are always null or false."""

    dag_id: str
    dag_display_name: str
    root_dag_id: None = None
    is_subdag: bool = False
    last_pickled: None = None
    last_expired: None = None
    scheduler_lock: None = None
    pickle_id: None = None
    default_view: str = "grid"
    file_token: str = Field(description="Reads the DAG file's source at /dagSources/{file_token}.")
    schedule_interval: CronExpression | None = None
    has_task_concurrency_limits: bool | None = None
    has_import_errors: bool | None = None
    max_consecutive_failed_dag_runs: int = 0
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


class DagListQuery(Ordered):
    tags: list[str] | None = Field(None, description="Only DAGs with any of these tags.")
    paused: bool | None = Field(None, description="Only paused (true) or unpaused (false) DAGs.")
    only_active: bool = Field(True, description="Hide DAGs whose file is gone.")
    dag_id_pattern: str | None = Field(None, description="Only DAG ids containing this text.")
    fields: list[str] | None = Field(None, description="Return only these fields of each DAG.")


class FieldsQuery(BaseModel):
    fields: list[str] | None = Field(None, description="Return only these fields.")


class DagPatch(BaseModel):
    """Only ``is_paused`` can change; the other fields of a DAG sent back are ignored, as
    Airflow ignores read-only fields."""

    is_paused: bool


class UpdateMaskQuery(BaseModel):
    update_mask: list[str] | None = Field(None, description="The fields to update.")


class BulkPatchQuery(Page, UpdateMaskQuery):
    dag_id_pattern: str = Field(
        min_length=1, max_length=250, description="DAG ids containing this text; ~ for all."
    )
    tags: list[str] | None = Field(None, description="Only DAGs with any of these tags.")
    only_active: bool = Field(True, description="Leave DAGs whose file is gone alone.")


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
    note: str | None = None


class DagRunCollection(BaseModel):
    dag_runs: list[DagRun]
    total_entries: int


class RunDates(BaseModel):
    """Date ranges of Airflow's run and task-instance filters."""

    execution_date_gte: AwareDatetime | None = None
    execution_date_lte: AwareDatetime | None = None
    start_date_gte: AwareDatetime | None = None
    start_date_lte: AwareDatetime | None = None
    end_date_gte: AwareDatetime | None = None
    end_date_lte: AwareDatetime | None = None
    updated_at_gte: AwareDatetime | None = Field(None, description="Row changed at or after.")
    updated_at_lte: AwareDatetime | None = Field(None, description="Row changed at or before.")


class DagRunListQuery(Ordered, RunDates, FieldsQuery):
    state: list[DagRunState] | None = Field(None, description="Only runs in these states.")
    logical_date_gte: AwareDatetime | None = None
    logical_date_lte: AwareDatetime | None = None


class TriggerDagRun(Body):
    dag_run_id: str | None = Field(None, max_length=250, pattern=ID_PATTERN)
    logical_date: AwareDatetime | None = None
    execution_date: AwareDatetime | None = Field(None, description="Airflow 2's logical_date.")
    note: str | None = Field(None, max_length=1000, description="A note on the new run.")
    data_interval_start: AwareDatetime | None = Field(None, description="With the end, as Airflow.")
    data_interval_end: AwareDatetime | None = Field(None, description="Else the timetable's.")
    conf: dict[str, Any] | None = Field(None, description="Run parameters, checked by the DAG.")


class SetNote(Body):
    """A note on a run or task instance; ``null`` or ``""`` removes it."""

    note: str | None = Field(None, max_length=1000)


class DagRunPatch(Body):
    state: Literal["success", "failed"]


class ClearDagRun(Body):
    """Airflow answers a dry run with the task instances it would clear, else the run."""

    dry_run: bool = Field(True, description="Only list what would be cleared.")
    only_failed: bool = False


# --- task instances -------------------------------------------------------------------


class TaskInstanceReference(BaseModel):
    task_id: str
    dag_id: str
    dag_run_id: str
    map_index: int
    execution_date: AwareDatetime | None = None


class TaskInstanceReferenceCollection(BaseModel):
    task_instances: list[TaskInstanceReference]
    total_entries: int


class TaskInstance(BaseModel):
    """A task instance with Airflow's fields: SLA misses and triggers are always null, and
    ``unixname`` is empty (Tradewind does not record the OS user)."""

    task_id: str
    task_display_name: str
    dag_id: str
    dag_run_id: str
    execution_date: AwareDatetime | None
    map_index: int
    state: TaskState
    try_number: int
    max_tries: int
    start_date: AwareDatetime | None
    end_date: AwareDatetime | None
    duration: float | None
    hostname: str
    unixname: str = ""
    pid: int | None
    pool: str
    pool_slots: int
    queue: str
    priority_weight: int
    operator: str | None
    queued_when: AwareDatetime | None
    next_try_at: AwareDatetime | None
    rendered_fields: dict[str, Any]
    executor: str | None = None
    executor_config: str = "{}"
    sla_miss: None = None
    trigger: None = None
    triggerer_job: None = None
    note: str | None = None
    #: a mapped instance's ``map_index_template``, rendered after it ran
    rendered_map_index: str | None = None


class TaskInstanceCollection(BaseModel):
    task_instances: list[TaskInstance]
    total_entries: int


class TaskInstanceFilters(RunDates):
    """Airflow's task-instance filters (lists of values match any of them)."""

    state: list[TaskState] | None = Field(None, description="Only instances in these states.")
    duration_gte: float | None = None
    duration_lte: float | None = None
    pool: list[str] | None = None
    queue: list[str] | None = None
    executor: list[str] | None = Field(None, description="Tradewind records no executor per try.")


class ClearedRun(RootModel[TaskInstanceCollection | DagRun]):
    """A run's clear: the task instances a dry run would clear, else the run, as Airflow."""


class TaskInstanceListQuery(Page, TaskInstanceFilters):
    order_by: str | None = Field(
        None, max_length=100, description="Field to sort by; '-field' sorts descending."
    )


class MapIndexQuery(BaseModel):
    map_index: int = Field(
        -1, ge=-1, le=MAX_INT, description="The mapped instance; -1 when not mapped."
    )


class TaskInstancePatch(Body):
    new_state: Literal["success", "failed", "skipped"]
    dry_run: bool = Field(True, description="Only answer what would change (Airflow's default).")


class UpdateTaskInstancesState(TaskInstancePatch):
    """Airflow's bulk marking: one task (and its relatives) in one run, or with the runs
    before or after it; the run is named by ``dag_run_id`` or ``execution_date``."""

    task_id: str
    dag_run_id: str | None = None
    execution_date: AwareDatetime | None = None
    include_upstream: bool = False
    include_downstream: bool = False
    include_future: bool = False
    include_past: bool = False


class ClearTaskInstances(Body):
    dry_run: bool = Field(True, description="Only list what would be cleared.")
    task_ids: list[str] | None = Field(None, description="These tasks only (default: all).")
    dag_run_id: str | None = Field(None, description="This run only.")
    start_date: AwareDatetime | None = Field(None, description="Runs from this logical date.")
    end_date: AwareDatetime | None = Field(None, description="Runs up to this logical date.")
    only_failed: bool = True
    include_upstream: bool = False
    include_downstream: bool = False
    include_past: bool = Field(False, description="Also the runs before (dag_run_id's, or all).")
    include_future: bool = Field(False, description="Also the runs after (dag_run_id's, or all).")
    only_running: bool = Field(False, description="Not supported: true is a 400.")
    reset_dag_runs: bool = Field(True, description="Runs always go back to queued: false is a 400.")
    include_subdags: bool = Field(False, description="Accepted; Tradewind has no SubDAGs.")
    include_parentdag: bool = Field(False, description="Accepted; Tradewind has no SubDAGs.")


class LogQuery(MapIndexQuery):
    offset: int = Field(
        0, ge=0, le=2**53, description="Byte to read from: the previous answer's next_offset."
    )
    token: str | None = Field(
        None, max_length=20, description="Airflow's continuation_token: the same as offset."
    )
    full_content: bool = Field(False, description="Accepted; every answer reads to the end.")


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
    continuation_token: str = Field(description="Airflow's name of next_offset, as text.")


# --- XComs ------------------------------------------------------------------------------


class XComEntry(BaseModel):
    key: str
    timestamp: AwareDatetime
    execution_date: AwareDatetime | None
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
    xcom_key: str | None = Field(None, description="Only XComs with this key.")


class XComEntryQuery(MapIndexQuery):
    deserialize: bool = Field(False, description="Accepted; values are stored as JSON text.")
    stringify: bool = Field(True, description="Accepted; the value is always JSON text.")


class Problem(BaseModel):
    """Every error response: what went wrong, in words a user can act on."""

    type: str = Field(description="Airflow's error section for the status, or about:blank.")
    title: str
    status: int
    detail: str
