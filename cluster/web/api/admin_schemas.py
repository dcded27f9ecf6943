"""Schemas of the variables, connections, pools, users, audit-log and monitoring endpoints.

Connection passwords are write-only: :class:`ConnectionBody` accepts one, no response
model has the field, so the API cannot return it even by mistake.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    model_serializer,
)

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
    deferred_slots: int
    open_slots: int
    scheduled_slots: int
    description: str | None
    include_deferred: bool


class PoolCollection(BaseModel):
    pools: list[Pool]
    total_entries: int


class PoolBody(Body):
    name: str = Field(min_length=1, max_length=256, pattern=KEY_PATTERN)
    slots: int = Field(ge=0, le=2**31 - 1)
    description: str | None = None
    include_deferred: bool = Field(False, description="Only false: deferred tasks hold no slot.")


class PoolPatch(Body):
    name: str | None = Field(None, description="Must equal the name in the path if given.")
    slots: int | None = Field(None, ge=0, le=2**31 - 1)
    description: str | None = None
    include_deferred: bool | None = Field(None, description="Only false: see PoolBody.")


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
    """A user in Airflow's shape. Tradewind keeps no first and last names (empty) and no
    login count or change time (null); a user without an email has no ``email`` field,
    since Airflow's schema wants a non-empty one."""

    first_name: str = ""
    last_name: str = ""
    username: str
    email: str | None
    roles: list[RoleName]
    active: bool
    created_on: AwareDatetime
    changed_on: AwareDatetime | None = None
    last_login: AwareDatetime | None
    login_count: int | None = None
    failed_login_count: int
    locked_until: AwareDatetime | None

    @model_serializer(mode="wrap")
    def _without_empty_email(
        self, handler: SerializerFunctionWrapHandler, info: SerializationInfo
    ) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if data.get("email") is None:
            data.pop("email", None)
        return data


class NewUser(BaseModel):
    """Airflow's user body: one role (default ``Public``, as Airflow's registration role);
    names are accepted but not kept; read-only fields sent back are ignored."""

    username: str = Field(min_length=1, max_length=256)
    password: str = Field(min_length=1, max_length=1000)
    email: str | None = Field(None, max_length=256)
    first_name: str | None = None
    last_name: str | None = None
    roles: list[RoleName] = Field(default_factory=list, max_length=1)


class UserPatch(BaseModel):
    """Airflow's user body for a PATCH: the fields sent change (with ``update_mask``, only
    those it names); names are accepted but not kept; read-only fields are ignored."""

    username: str = Field(min_length=1, max_length=256)
    password: str | None = Field(None, min_length=1, max_length=1000)
    email: str | None = Field(None, max_length=256)
    first_name: str | None = None
    last_name: str | None = None
    roles: list[RoleName] | None = Field(None, max_length=1)


class UserCollection(BaseModel):
    users: list[User]
    total_entries: int


class EventLog(BaseModel):
    """An audit-log entry in Airflow's shape: ``extra`` is JSON text, as Airflow stores it."""

    event_log_id: int
    when: AwareDatetime
    event: str
    owner: str | None
    dag_id: str | None
    run_id: str | None
    task_id: str | None
    map_index: int | None = None
    try_number: int | None = None
    execution_date: AwareDatetime | None = None
    extra: str | None = None


class EventLogCollection(BaseModel):
    event_logs: list[EventLog]
    total_entries: int


class EventLogListQuery(Page):
    dag_id: str | None = None
    event: str | None = None
    owner: str | None = None
    run_id: str | None = None
    task_id: str | None = None
    map_index: int | None = Field(None, description="No entry records one: matches nothing.")
    try_number: int | None = Field(None, description="No entry records one: matches nothing.")
    before: AwareDatetime | None = Field(None, description="Only entries before this time.")
    after: AwareDatetime | None = Field(None, description="Only entries after this time.")
    included_events: str | None = Field(None, description="Comma-separated events to keep.")
    excluded_events: str | None = Field(None, description="Comma-separated events to drop.")
    order_by: str | None = Field(
        None, max_length=100, description="Field to sort by (default '-event_log_id')."
    )


# --- monitoring -------------------------------------------------------------------------------


class MetastoreStatus(BaseModel):
    status: str
    detail: str | None = None


HealthStatus = Literal["healthy", "unhealthy"] | None


class SchedulerStatus(BaseModel):
    """``status`` is null while no scheduler has ever led (Airflow's "unknown")."""

    status: HealthStatus
    leader: str | None = None
    epoch: int | None = None
    latest_heartbeat: AwareDatetime | None = None
    latest_scheduler_heartbeat: AwareDatetime | None = None


class ComponentStatus(BaseModel):
    status: HealthStatus = None


class TriggererStatus(ComponentStatus):
    latest_triggerer_heartbeat: AwareDatetime | None = None


class DagProcessorStatus(ComponentStatus):
    latest_dag_processor_heartbeat: AwareDatetime | None = None


class Health(BaseModel):
    """Airflow's health document (``metadatabase``, ``scheduler``, ``triggerer``,
    ``dag_processor``; the last two null: not tracked here) plus Tradewind's
    ``metastore`` detail and the scheduler's leader and epoch."""

    metadatabase: ComponentStatus
    metastore: MetastoreStatus
    scheduler: SchedulerStatus
    triggerer: TriggererStatus = TriggererStatus()
    dag_processor: DagProcessorStatus = DagProcessorStatus()


class Version(BaseModel):
    version: str
    git_version: str | None


class OpenApiDocument(BaseModel):
    """The OpenAPI 3.1 document itself (free-form JSON)."""

    model_config = ConfigDict(extra="allow")


# --- roles, permissions, plugins, providers ---------------------------------------------------


class NamedThing(BaseModel):
    name: str


class ActionResource(BaseModel):
    action: NamedThing
    resource: NamedThing


class RoleInfo(BaseModel):
    name: str
    actions: list[ActionResource]


class RoleCollection(BaseModel):
    roles: list[RoleInfo]
    total_entries: int


class ActionCollection(BaseModel):
    actions: list[NamedThing]
    total_entries: int


class PluginCollection(BaseModel):
    plugins: list[dict[str, Any]]
    total_entries: int


class ProviderCollection(BaseModel):
    providers: list[dict[str, Any]]
    total_entries: int
