"""``BaseTrigger`` and ``TriggerEvent`` where Airflow has them (``airflow.triggers.base``).

They are defined in the SDK (:mod:`cluster.sdk.trigger_base`), since DAG files and
operators import them and the SDK sits below this package.
"""

from __future__ import annotations

from cluster.sdk.trigger_base import TASK_END_KEY as TASK_END_KEY
from cluster.sdk.trigger_base import BaseTaskEndEvent as BaseTaskEndEvent
from cluster.sdk.trigger_base import BaseTrigger as BaseTrigger
from cluster.sdk.trigger_base import StartTriggerArgs as StartTriggerArgs
from cluster.sdk.trigger_base import TaskFailedEvent as TaskFailedEvent
from cluster.sdk.trigger_base import TaskSkippedEvent as TaskSkippedEvent
from cluster.sdk.trigger_base import TaskSuccessEvent as TaskSuccessEvent
from cluster.sdk.trigger_base import TriggerEvent as TriggerEvent
from cluster.sdk.trigger_base import task_end_of as task_end_of
