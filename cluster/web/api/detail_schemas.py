"""Schemas of Airflow's DAG detail, task, DAG source, DAG stats and batch-list endpoints.

Field names and types are Airflow 2.10's (``v1.yaml``); time spans are Airflow's
``TimeDelta`` objects. Fields of features Tradewind lacks are null, never invented.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from cluster.states import DagRunState
from cluster.web.api.schemas import MAX_INT, MAX_PAGE, Dag, Page, TaskInstanceFilters


class TimeDelta(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    type_: Literal["TimeDelta"] = Field("TimeDelta", alias="__type")
    days: int
    seconds: int
    microseconds: int

    @classmethod
    def of_seconds(cls, seconds: float | None) -> TimeDelta | None:
        if seconds is None:
            return None
        span = timedelta(seconds=seconds)
        return cls.model_validate(
            {"days": span.days, "seconds": span.seconds, "microseconds": span.microseconds}
        )


class DagDetail(Dag):
    """A DAG with the details Airflow's ``/dags/{dag_id}/details`` adds."""

    timezone: str | None
    catchup: bool | None
    orientation: str | None = "LR"
    concurrency: int | None
    start_date: AwareDatetime | None
    dag_run_timeout: TimeDelta | None
    dataset_expression: dict[str, Any] | None = None
    doc_md: str | None
    params: dict[str, Any]
    end_date: AwareDatetime | None
    is_paused_upon_creation: bool | None = None
    last_parsed: AwareDatetime | None
    template_search_path: list[str] | None = None
    render_template_as_native_obj: bool | None = None


class ClassReference(BaseModel):
    module_path: str
    class_name: str


class Task(BaseModel):
    """A task of a DAG's serialized form, as Airflow's ``Task``."""

    class_ref: ClassReference
    task_id: str
    task_display_name: str
    owner: str
    start_date: AwareDatetime | None
    end_date: AwareDatetime | None
    trigger_rule: str
    extra_links: list[dict[str, Any]] = []
    depends_on_past: bool
    is_mapped: bool
    wait_for_downstream: bool = False
    retries: int
    queue: str | None
    executor: str | None = None
    pool: str
    pool_slots: int
    execution_timeout: TimeDelta | None
    retry_delay: TimeDelta | None
    retry_exponential_backoff: bool
    priority_weight: int
    weight_rule: str
    ui_color: str = Field(default="#fff", pattern=r"^#[a-fA-F0-9]{3,6}$")
    ui_fgcolor: str = Field(default="#000", pattern=r"^#[a-fA-F0-9]{3,6}$")
    template_fields: list[str]
    downstream_task_ids: list[str]
    doc_md: str | None


class TaskCollection(BaseModel):
    tasks: list[Task]
    total_entries: int


class TaskOrderQuery(BaseModel):
    order_by: str | None = Field(None, max_length=100, description="Field to sort by.")


class DagWarningCollection(BaseModel):
    dag_warnings: list[dict[str, Any]]
    total_entries: int


class DagWarningQuery(Page):
    dag_id: str | None = None
    warning_type: str | None = None
    order_by: str | None = Field(None, max_length=100)


class DagSource(BaseModel):
    content: str


class DagStatsQuery(BaseModel):
    dag_ids: str = Field(max_length=10_000, description="DAG ids separated by commas.")


class DagStateCount(BaseModel):
    state: DagRunState
    count: int


class DagStats(BaseModel):
    dag_id: str
    stats: list[DagStateCount]


class DagStatsCollection(BaseModel):
    dags: list[DagStats]
    total_entries: int


class BatchPage(BaseModel):
    """Paging of Airflow's batch lists: in the body, as ``page_offset`` / ``page_limit``."""

    model_config = ConfigDict(extra="forbid")

    page_offset: int = Field(0, ge=0, le=MAX_INT)
    page_limit: int = Field(MAX_PAGE, ge=1, le=MAX_INT, description="More than 100 reads 100.")


class ListDagRunsForm(BatchPage):
    order_by: str | None = Field(None, max_length=100)
    dag_ids: list[str] | None = None
    states: list[DagRunState] | None = None
    execution_date_gte: AwareDatetime | None = None
    execution_date_lte: AwareDatetime | None = None
    start_date_gte: AwareDatetime | None = None
    start_date_lte: AwareDatetime | None = None
    end_date_gte: AwareDatetime | None = None
    end_date_lte: AwareDatetime | None = None


class ListTaskInstanceForm(BatchPage, TaskInstanceFilters):
    dag_ids: list[str] | None = None
    dag_run_ids: list[str] | None = None
    task_ids: list[str] | None = None
