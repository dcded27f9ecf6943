"""Turn a DAG object into its :class:`SerializedDag`: the form the scheduler and the web use.

Pure: no metastore, no I/O. :func:`serialize_dag` validates the DAG first, so a DAG
with a cycle or invalid param defaults never gets a serialized form.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from cluster.dagfiles.serialized import SerializedDag, SerializedTask
from cluster.sdk.baseoperator import BaseOperator
from cluster.sdk.dag import DAG
from cluster.sdk.datasets import outlet_to_dict
from cluster.sdk.mappedoperator import MappedOperator, mapping_producer_ids
from cluster.sdk.taskgroup import TaskGroup
from cluster.sdk.timetables import timetable_to_dict
from cluster.sensors.base import BaseSensorOperator


def _seconds(value: timedelta | None) -> float | None:
    return value.total_seconds() if value is not None else None


def _utc(value: datetime | None) -> datetime | None:
    return value.astimezone(UTC) if value is not None else None


def _task_extra(task: BaseOperator) -> dict[str, Any]:
    extra: dict[str, Any] = {"ui_color": task.ui_color, "ui_fgcolor": task.ui_fgcolor}
    if task.inherits_from_empty_operator:
        extra["empty"] = True
    if task.custom_operator_name:
        extra["custom_operator_name"] = task.custom_operator_name
    if task.template_fields_renderers:
        extra["template_fields_renderers"] = dict(task.template_fields_renderers)
    if len(task.params):
        extra["params"] = task.params.dump()
    if isinstance(task, BaseSensorOperator):
        extra["poke_interval"] = task.poke_interval
        extra["timeout"] = task.timeout
        extra["soft_fail"] = task.soft_fail
    if task.label != task.task_id:
        extra["label"] = task.label
    if task._task_display_property_value:
        extra["display_name"] = task._task_display_property_value
    outlets = [o for o in map(outlet_to_dict, _as_list(task.outlets)) if o is not None]
    if outlets:
        extra["outlets"] = outlets
    extra.update(task.serialized_extra())
    if task.map_index_template:
        extra["map_index_template"] = task.map_index_template
    return extra


def _as_list(value: Any) -> list[Any]:
    """``outlets=`` may be one object or a list, as in Airflow."""
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple | set) else [value]


def _sensor_mode(task: BaseOperator) -> str | None:
    if isinstance(task, BaseSensorOperator):
        return task.mode
    if isinstance(task, MappedOperator) and issubclass(task.operator_class, BaseSensorOperator):
        return str(task.partial_kwargs.get("mode", "poke"))
    return None


def _new_task(**values: Any) -> SerializedTask:
    """A :class:`SerializedTask` given every one of its fields, built without the frozen
    dataclass's ``__init__``: its ``object.__setattr__`` per field was nearly half the cost of
    serializing a task (pool processes serialize each DAG they import, to check its
    fingerprint). The instance is as ``__init__`` would make it (a test compares them)."""
    task = object.__new__(SerializedTask)
    task.__dict__.update(values)
    return task


def serialize_task(task: BaseOperator, feeds_mapping: bool = False) -> SerializedTask:
    group = task.task_group
    return _new_task(
        task_id=task.task_id,
        operator=task.task_type,
        trigger_rule=str(task.trigger_rule),
        upstream_task_ids=tuple(sorted(task.upstream_task_ids)),
        downstream_task_ids=tuple(sorted(task.downstream_task_ids)),
        retries=task.retries,
        retry_delay=task.retry_delay.total_seconds(),
        retry_exponential_backoff=task.retry_exponential_backoff,
        max_retry_delay=_seconds(task.max_retry_delay),
        execution_timeout=_seconds(task.execution_timeout),
        pool=task.pool,
        pool_slots=task.pool_slots,
        queue=task.queue if task.names_queue else None,
        priority_weight=task.priority_weight,
        weight_rule=task.weight_rule,
        depends_on_past=task.depends_on_past,
        sensor_mode=_sensor_mode(task),
        task_group_id=group.group_id if group is not None and not group.is_root else None,
        template_fields=tuple(task.template_fields),
        doc_md=task.doc_md,
        owner=task.owner,
        has_callbacks=task.has_callbacks,
        extra=_task_extra(task),
        is_setup=task.is_setup,
        is_teardown=task.is_teardown,
        on_failure_fail_dagrun=task.on_failure_fail_dagrun,
        mapping=task.expand_input.to_ref() if isinstance(task, MappedOperator) else None,
        feeds_mapping=feeds_mapping,
        sla=_seconds(task.sla),
        max_active_tis_per_dag=task.max_active_tis_per_dag,
        max_active_tis_per_dagrun=task.max_active_tis_per_dagrun,
    )


def _groups(dag: DAG) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for group_id, group in sorted(dag.task_group_dict.items()):
        parent: TaskGroup | None = group.parent_group
        result[group_id] = {
            "tooltip": group.tooltip,
            "parent": parent.group_id if parent is not None and not parent.is_root else None,
            "prefix_group_id": group.prefix_group_id,
            "ui_color": group.ui_color,
        }
        expand_input = getattr(group, "expand_input", None)
        if expand_input is not None:
            result[group_id]["mapping"] = expand_input.to_ref()
    return result


def serialize_dag(dag: DAG) -> SerializedDag:
    """Validate ``dag`` and return its serialized form (tasks in definition order).

    :raises DagDefinitionError: when the DAG is invalid (cycle, bad param default).
    """
    dag.validate()
    producers = mapping_producer_ids(dag)
    return SerializedDag(
        dag_id=dag.dag_id,
        fileloc=dag.fileloc,
        timetable=timetable_to_dict(dag.timetable),
        schedule=dag.timetable.summary,
        timezone=dag.timezone_name,
        start_date=_utc(dag.start_date),
        end_date=_utc(dag.end_date),
        catchup=dag.catchup,
        max_active_runs=dag.max_active_runs,
        max_active_tasks=dag.max_active_tasks,
        dagrun_timeout=_seconds(dag.dagrun_timeout),
        tags=tuple(dag.tags),
        description=dag.description,
        doc_md=dag.doc_md,
        owner=str(dag.default_args.get("owner", "airflow")),
        params=dag.params.dump(),
        task_groups=_groups(dag),
        edge_labels={f"{up}>{down}": label for (up, down), label in sorted(dag.edge_info.items())},
        has_callbacks=dag.on_success_callback is not None or dag.on_failure_callback is not None,
        tasks={t.task_id: serialize_task(t, t.task_id in producers) for t in dag.tasks},
        display_name=dag.dag_display_name if dag.dag_display_name != dag.dag_id else None,
    )
