"""The one exception tree of Tradewind.

Every error raised on purpose is a :class:`TradewindError`. Vendor errors (SQLAlchemy,
pika, kazoo, ...) are wrapped where they enter, keeping the cause. Messages tell the
user what to do. The task-control exceptions are re-exported by ``cluster.sdk`` under
Airflow's names.
"""

from __future__ import annotations


class TradewindError(Exception):
    """Base of every error Tradewind raises on purpose."""

    #: exit code used when this error ends a CLI command
    exit_code = 1


class ConfigError(TradewindError):
    """A setting is missing, malformed or of the wrong type."""

    exit_code = 2


class UsageError(TradewindError):
    """A command was called with bad arguments."""

    exit_code = 2


class NotFoundError(TradewindError):
    """A DAG, run, task, variable, connection, pool or user does not exist."""

    exit_code = 3


class AlreadyExistsError(TradewindError):
    """Something with that key exists already."""

    exit_code = 4


# --- authoring -------------------------------------------------------------------


class DagDefinitionError(TradewindError):
    """A DAG file defines an invalid DAG: cycle, duplicate task id, bad schedule, ..."""


class MappingTypeError(DagDefinitionError, TypeError):
    """``partial``/``expand`` got an argument it cannot take (Airflow raises ``TypeError``):
    unknown, already given to ``partial``, or not mappable for this operator."""


class MappingValueError(DagDefinitionError, ValueError):
    """``expand`` got a value it cannot map over (Airflow raises ``ValueError``): a string,
    a number, an XCom with a custom key."""


class ParamValidationError(TradewindError):
    """A DAG run's params do not match the DAG's ``Param`` declarations."""

    exit_code = 2


class TemplateError(TradewindError):
    """A template field could not be rendered."""


class FeatureNotSupported(TradewindError):
    """A DAG file uses an Airflow feature Tradewind does not have yet (named in the message)."""


class MappingNotSupported(FeatureNotSupported, NotImplementedError):
    """A form of task mapping that Airflow 2.10 refuses too, with ``NotImplementedError``
    (an ``.expand()``ed task inside an expanded task group)."""


class PluginError(TradewindError):
    """A plugin is invalid (no name) or a plugin timetable cannot be found."""


class EmailError(TradewindError):
    """An email could not be sent (SMTP refused it or could not be reached)."""


# --- DAG files --------------------------------------------------------------------


class DagVersionMismatch(TradewindError):
    """A worker's DAG file differs from the version the scheduler serialized."""


# --- metastore --------------------------------------------------------------------


class MetastoreError(TradewindError):
    """The metastore could not be reached or refused an operation."""


class MigrationError(MetastoreError):
    """The metastore schema is missing, older or newer than this code expects."""


def metastore_failure(cause: BaseException) -> MetastoreError:
    """A database driver's error as a command reports it: its first line, and what to
    check (the URL, or a schema never created). Shared by the CLI's handler of
    SQLAlchemy's errors and the driver-only reads of :mod:`cluster.metastore.dbapi`,
    so both paths print the same line."""
    first = (str(cause).splitlines() or [""])[0]
    return MetastoreError(
        f"metastore: {first} (check metastore.url; run 'tradewind db migrate' on a new metastore)"
    )


class SecretError(TradewindError):
    """A secret could not be encrypted or decrypted (wrong or missing Fernet key)."""


class InvalidTransition(TradewindError):
    """A state change that the transition table in ``cluster.states`` forbids."""


class FencedOff(TradewindError):
    """This scheduler's epoch is no longer the current one: it must stop writing."""


class ElectionLost(TradewindError):
    """The election was lost during a write transaction, which is rolled back."""


# --- broker and cluster endpoints --------------------------------------------------


class ElectionError(TradewindError):
    """The scheduler election could not be set up (bad settings, ZooKeeper unusable)."""


class BrokerError(TradewindError):
    """RabbitMQ could not be reached or refused an operation."""


class SignatureError(TradewindError):
    """A log request is unsigned, wrongly signed or expired."""


class ExpiredSignature(SignatureError):
    """The signature was right but its expiry has passed."""


# --- task control (raised inside task code, handled by the runner) ---------------


class TaskControl(TradewindError):
    """Base of the exceptions task code raises to steer its own outcome."""


class TaskSkipped(TaskControl):
    """End this task instance as ``skipped`` (Airflow's ``AirflowSkipException``)."""


class TaskFailedNoRetry(TaskControl):
    """End this task instance as ``failed`` without retrying (``AirflowFailException``)."""


class TaskRescheduled(TaskControl):
    """Give the slot back and run again at ``reschedule_date`` (``AirflowRescheduleException``)."""

    def __init__(self, reschedule_date: object) -> None:
        super().__init__(f"rescheduled for {reschedule_date}")
        self.reschedule_date = reschedule_date


class TaskDeferred(TaskControl):
    """Hand ``trigger`` to a triggerer, give the slot back, and resume in ``method_name``
    with ``kwargs`` and the trigger's event (Airflow's ``TaskDeferred``, raised by
    ``BaseOperator.defer``). ``timeout`` (a timedelta) fails the try if no event came."""

    def __init__(
        self,
        *,
        trigger: object,
        method_name: str,
        kwargs: dict[str, object] | None = None,
        timeout: object = None,
    ) -> None:
        super().__init__(f"deferred to {type(trigger).__name__}, resuming in {method_name}")
        self.trigger = trigger
        self.method_name = method_name
        self.kwargs = kwargs
        self.timeout = timeout


class TaskDeferralError(TradewindError):
    """A deferred try's trigger failed or timed out (Airflow's ``TaskDeferralError``)."""


class TaskTimeout(TradewindError):
    """A task ran past its ``execution_timeout`` (``AirflowTaskTimeout``)."""


class SensorTimeout(TaskFailedNoRetry):
    """A sensor waited past its ``timeout`` (``AirflowSensorTimeout``); never retried."""


class XComTooLarge(TradewindError):
    """An XCom value is larger than ``core.xcom_max_size``."""


class ExternalStateError(TradewindError):
    """A run or task of another DAG that a task waits for ended in a failed state."""


class UnmappableXCom(TradewindError):
    """A task whose return value a mapped task expands over returned nothing, a value
    that is not a list or dict, or one longer than ``core.max_map_length``."""
