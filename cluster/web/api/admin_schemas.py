"""Schemas of the variables, connections, pools, users, audit-log and monitoring endpoints.

Connection passwords are write-only: :class:`ConnectionBody` accepts one, no response
model has the field, so the API cannot return it even by mistake.
"""

from __future__ import annotations

from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from cluster.web.api.schemas import Body, Page

KEY_PATTERN = r"^[A-Za-z0-9_.\-]+$"


# --- variables ----------------------------------------------------------------------


class VariableInfo(BaseModel):
    key: str
    description: str | None
    is_encrypted: bool


class VariableCollection(BaseModel):
    variables: list[VariableInfo]
    total_entries: int


class Variable(BaseModel):
    key: str
    value: str
    description: str | None


class VariableBody(Body):
    key: str = Field(min_length=1, max_length=250, pattern=KEY_PATTERN)
    value: str
    description: str | None = None


class VariablePatch(Body):
    key: str | None = Field(None, description="Must equal the key in the path if given.")
    value: str
    description: str | None = None


# --- connections ----------------------------------------------------------------------


class Connection(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    connection_id: str
    conn_type: str
    description: str | None
    host: str | None
    login: str | None
    schema_: str | None = Field(alias="schema")
    port: int | None
    extra: str | None = Field(None, description="Only returned by the single-connection GET.")


class ConnectionCollection(BaseModel):
    connections: list[Connection]
    total_entries: int


class ConnectionBody(Body):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    connection_id: str = Field(min_length=1, max_length=250, pattern=KEY_PATTERN)
    conn_type: str = Field(min_length=1, max_length=500)
    description: str | None = None
    host: str | None = Field(None, max_length=500)
    login: str | None = None
    schema_: str | None = Field(None, alias="schema", max_length=500)
    port: int | None = Field(None, ge=0, le=65535)
    password: str | None = Field(None, description="Write-only: never returned.")
    extra: str | None = Field(None, description="JSON text of extra settings.")


class ConnectionPatch(Body):
    """Fields left out keep their value; ``connection_id`` must equal the path's if given."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    connection_id: str | None = None
    conn_type: str | None = Field(None, min_length=1, max_length=500)
    description: str | None = None
    host: str | None = Field(None, max_length=500)
    login: str | None = None
    schema_: str | None = Field(None, alias="schema", max_length=500)
    port: int | None = Field(None, ge=0, le=65535)
    password: str | None = None
    extra: str | None = None


# --- pools ------------------------------------------------------------------------------


class Pool(BaseModel):
    name: str
    slots: int
    occupied_slots: int
    running_slots: int
    queued_slots: int
    #: slots of deferred instances: shown, never occupied (Airflow's include_deferred off)
    deferred_slots: int = 0
    open_slots: int
    description: str | None


class PoolCollection(BaseModel):
    pools: list[Pool]
    total_entries: int


class PoolBody(Body):
    name: str = Field(min_length=1, max_length=256, pattern=KEY_PATTERN)
    slots: int = Field(ge=0, le=2**31 - 1)
    description: str | None = None


class PoolPatch(Body):
    name: str | None = Field(None, description="Must equal the name in the path if given.")
    slots: int | None = Field(None, ge=0, le=2**31 - 1)
    description: str | None = None


# --- import errors, users, audit log ------------------------------------------------------


class ImportErrorEntry(BaseModel):
    import_error_id: int
    timestamp: AwareDatetime
    filename: str
    message: str
    stack_trace: str | None


class ImportErrorCollection(BaseModel):
    import_errors: list[ImportErrorEntry]
    total_entries: int


class RoleName(BaseModel):
    name: str


class User(BaseModel):
    username: str
    email: str | None
    roles: list[RoleName]
    active: bool
    created_on: AwareDatetime
    last_login: AwareDatetime | None
    failed_login_count: int
    locked_until: AwareDatetime | None


class UserCollection(BaseModel):
    users: list[User]
    total_entries: int


class EventLog(BaseModel):
    event_log_id: int
    when: AwareDatetime
    event: str
    owner: str | None
    dag_id: str | None
    run_id: str | None
    task_id: str | None
    extra: Any = None


class EventLogCollection(BaseModel):
    event_logs: list[EventLog]
    total_entries: int


class EventLogListQuery(Page):
    dag_id: str | None = None
    event: str | None = None


# --- monitoring -------------------------------------------------------------------------------


class MetastoreStatus(BaseModel):
    status: str
    detail: str | None = None


class SchedulerStatus(BaseModel):
    status: str
    leader: str | None = None
    epoch: int | None = None
    latest_heartbeat: AwareDatetime | None = None


class Health(BaseModel):
    metastore: MetastoreStatus
    scheduler: SchedulerStatus


class Version(BaseModel):
    version: str
    git_version: str | None


class OpenApiDocument(BaseModel):
    """The OpenAPI 3.1 document itself (free-form JSON)."""

    model_config = ConfigDict(extra="allow")
