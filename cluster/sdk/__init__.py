"""What DAG files import: Airflow's core authoring API under Tradewind's names.

Replace ``airflow``, ``airflow.sdk``, ``airflow.decorators``, ``airflow.models.*`` and
``airflow.utils.{trigger_rule,task_group,edgemodifier,weekday}`` / ``airflow.exceptions``
imports with ``cluster.sdk``. Importing this package loads no database, broker or web
code (a test checks it).
"""

from __future__ import annotations

from cluster.errors import PluginError as AirflowPluginException
from cluster.errors import SensorTimeout as AirflowSensorTimeout
from cluster.errors import TaskDeferralError as TaskDeferralError
from cluster.errors import TaskDeferred as TaskDeferred
from cluster.errors import TaskFailedNoRetry as AirflowFailException
from cluster.errors import TaskRescheduled as AirflowRescheduleException
from cluster.errors import TaskSkipped as AirflowSkipException
from cluster.errors import TaskTimeout as AirflowTaskTimeout
from cluster.errors import TradewindError as AirflowException
from cluster.sdk.baseoperator import BaseOperator
from cluster.sdk.conditions import run_if, skip_if
from cluster.sdk.context import RunInfo, get_current_context
from cluster.sdk.dag import DAG, dag
from cluster.sdk.datasets import (
    BaseDataset,
    Dataset,
    DatasetAlias,
    DatasetAll,
    DatasetAny,
    Metadata,
)
from cluster.sdk.decorators import setup, task, teardown
from cluster.sdk.dependencies import EdgeModifier, Label, chain, cross_downstream
from cluster.sdk.email import send_email
from cluster.sdk.mappedgroup import MappedTaskGroup, task_group
from cluster.sdk.mappedoperator import MappedOperator
from cluster.sdk.params import Param, ParamsDict
from cluster.sdk.plugins import AirflowPlugin
from cluster.sdk.runtime import BaseHook, Connection, Variable
from cluster.sdk.taskgroup import TaskGroup
from cluster.sdk.timetables import (
    ContinuousTimetable,
    CronDataIntervalTimetable,
    CronTriggerTimetable,
    DagRunInfo,
    DataInterval,
    DatasetOrTimeSchedule,
    DatasetTriggeredTimetable,
    DeltaDataIntervalTimetable,
    EventsTimetable,
    NullTimetable,
    OnceTimetable,
    TimeRestriction,
    Timetable,
)
from cluster.sdk.trigger_base import BaseTrigger, StartTriggerArgs, TriggerEvent
from cluster.sdk.trigger_rule import TriggerRule
from cluster.sdk.unsupported import NOT_YET, unsupported
from cluster.sdk.weekday import WeekDay
from cluster.sdk.xcom_arg import XComArg

# Airflow 3's names for the same things
Asset = Dataset
AssetAlias = DatasetAlias
AssetAll = DatasetAll
AssetAny = DatasetAny
AssetOrTimeSchedule = DatasetOrTimeSchedule

__all__ = [
    "DAG",
    "AirflowException",
    "AirflowFailException",
    "AirflowPlugin",
    "AirflowPluginException",
    "AirflowRescheduleException",
    "AirflowSensorTimeout",
    "AirflowSkipException",
    "AirflowTaskTimeout",
    "Asset",
    "AssetAlias",
    "AssetAll",
    "AssetAny",
    "AssetOrTimeSchedule",
    "BaseDataset",
    "BaseHook",
    "BaseOperator",
    "BaseTrigger",
    "Connection",
    "ContinuousTimetable",
    "CronDataIntervalTimetable",
    "CronTriggerTimetable",
    "DagRunInfo",
    "DataInterval",
    "Dataset",
    "DatasetAlias",
    "DatasetAll",
    "DatasetAny",
    "DatasetOrTimeSchedule",
    "DatasetTriggeredTimetable",
    "DeltaDataIntervalTimetable",
    "EdgeModifier",
    "EventsTimetable",
    "Label",
    "MappedOperator",
    "MappedTaskGroup",
    "Metadata",
    "NullTimetable",
    "OnceTimetable",
    "Param",
    "ParamsDict",
    "RunInfo",
    "StartTriggerArgs",
    "TaskDeferralError",
    "TaskDeferred",
    "TaskGroup",
    "TimeRestriction",
    "Timetable",
    "TriggerEvent",
    "TriggerRule",
    "Variable",
    "WeekDay",
    "XComArg",
    "chain",
    "cross_downstream",
    "dag",
    "get_current_context",
    "run_if",
    "send_email",
    "setup",
    "skip_if",
    "task",
    "task_group",
    "teardown",
]


def __getattr__(name: str) -> object:
    """Airflow names of features Tradewind lacks fail naming the feature (PEP 562)."""
    if name in NOT_YET:
        raise unsupported(name)
    raise AttributeError(f"module 'cluster.sdk' has no attribute {name!r}")
