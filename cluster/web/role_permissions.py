"""Each endpoint's permission in Airflow's words, so ``/roles`` and ``/permissions`` tell
exactly what :data:`cluster.web.permissions.PERMISSIONS` enforces.

Airflow names a permission as an action on a resource (``can_read`` on ``DAGs``). A
role has a permission here when the table lets it call the endpoints that need it;
nothing is stored, so the answer cannot drift from the check. Permissions of features
Tradewind lacks (SLA misses, jobs, task reschedules, menus) are never listed.
"""

from __future__ import annotations

from cluster.web.permissions import PERMISSIONS, Role

READ, CREATE, EDIT, DELETE = "can_read", "can_create", "can_edit", "can_delete"
Permission = tuple[str, str]


def _crud(prefix: str, resource: str, *, names: tuple[str, ...]) -> dict[str, Permission]:
    actions = (READ, READ, CREATE, EDIT, DELETE)
    return {
        f"{prefix}{name}": (action, resource) for name, action in zip(names, actions, strict=True)
    }


_API_CRUD = ("get_{p}s", "get_{p}", "post_{p}", "patch_{p}", "delete_{p}")
_PAGE_CRUD = ("{p}s_list", "{p}s_list", "{p}_create", "{p}_edit", "{p}_delete")


def _both(plural_resource: str, singular: str) -> dict[str, Permission]:
    api = tuple(n.format(p=singular) for n in _API_CRUD)
    pages = tuple(n.format(p=singular) for n in _PAGE_CRUD)
    return _crud("api.", plural_resource, names=api) | _crud("admin.", plural_resource, names=pages)


#: endpoint → Airflow's (action, resource)
AIRFLOW_PERMISSION: dict[str, Permission] = {
    **{
        endpoint: (READ, "DAGs")
        for endpoint in (
            "dags.index", "dag.grid", "dag.grid_json", "dag.graph", "dag.runs", "dag.details",
            "api.get_dags", "api.get_dag", "api.get_dag_details", "api.get_tasks",
            "api.get_task",
        )
    },
    "dags.pause": (EDIT, "DAGs"),
    "api.patch_dag": (EDIT, "DAGs"),
    "api.patch_dags": (EDIT, "DAGs"),
    "api.delete_dag": (DELETE, "DAGs"),
    "api.get_dag_warnings": (READ, "DAG Warnings"),
    "dags.delete": (DELETE, "DAGs"),
    "dag.code": (READ, "DAG Code"),
    "api.get_dag_source": (READ, "DAG Code"),
    **{
        endpoint: (READ, "DAG Runs")
        for endpoint in (
            "runs.show", "browse.runs", "api.get_dag_runs", "api.get_dag_run",
            "api.get_dag_runs_batch", "api.get_dag_stats", "api.get_upstream_dataset_events",
        )
    },
    "dags.trigger": (CREATE, "DAG Runs"),
    "api.post_dag_run": (CREATE, "DAG Runs"),
    **{
        endpoint: (EDIT, "DAG Runs")
        for endpoint in (
            "runs.mark", "runs.clear", "api.patch_dag_run", "api.clear_dag_run",
            "api.set_dag_run_note",
        )
    },
    "runs.delete": (DELETE, "DAG Runs"),
    "api.delete_dag_run": (DELETE, "DAG Runs"),
    **{
        endpoint: (READ, "Task Instances")
        for endpoint in (
            "task_instances.show", "browse.task_instances", "api.get_task_instances",
            "api.get_task_instance", "api.get_mapped_task_instances",
            "api.get_mapped_task_instance", "api.get_task_instances_batch",
            "api.get_task_instance_tries", "api.get_task_instance_try_details",
            "api.get_mapped_task_instance_tries", "api.get_mapped_task_instance_try_details",
        )
    },
    **{
        endpoint: (EDIT, "Task Instances")
        for endpoint in (
            "task_instances.clear", "task_instances.mark", "api.patch_task_instance",
            "api.patch_mapped_task_instance", "api.post_set_task_instances_state",
            "api.post_clear_task_instances", "api.set_task_instance_note",
            "api.set_mapped_task_instance_note",
        )
    },
    "task_instances.log_json": (READ, "Task Logs"),
    "api.get_log": (READ, "Task Logs"),
    "api.get_sla_misses": (READ, "SLA Misses"),
    "api.get_xcom_entries": (READ, "XComs"),
    "api.get_xcom_entry": (READ, "XComs"),
    "browse.import_errors": (READ, "ImportError"),
    "api.get_import_errors": (READ, "ImportError"),
    "api.get_import_error": (READ, "ImportError"),
    "browse.audit_log": (READ, "Audit Logs"),
    "api.get_event_logs": (READ, "Audit Logs"),
    "api.get_event_log": (READ, "Audit Logs"),
    **{
        endpoint: (READ, "Datasets")
        for endpoint in (
            "browse.datasets", "api.get_datasets", "api.get_dataset", "api.get_dataset_events",
            "api.get_dag_dataset_queued_events", "api.get_dag_dataset_queued_event",
            "api.get_dataset_queued_events",
        )
    },
    "api.create_dataset_event": (CREATE, "Datasets"),
    "api.delete_dag_dataset_queued_events": (DELETE, "Datasets"),
    "api.delete_dag_dataset_queued_event": (DELETE, "Datasets"),
    "api.delete_dataset_queued_events": (DELETE, "Datasets"),
    **_both("Variables", "variable"),
    **_both("Connections", "connection"),
    **_both("Pools", "pool"),
    "users.index": (READ, "Users"),
    "api.get_users": (READ, "Users"),
    "api.get_user": (READ, "Users"),
    "users.create": (CREATE, "Users"),
    "api.post_user": (CREATE, "Users"),
    "api.delete_user": (DELETE, "Users"),
    "api.patch_user": (EDIT, "Users"),
    "users.set_role": (EDIT, "Users"),
    "users.delete": (DELETE, "Users"),
    "api.get_roles": (READ, "Roles"),
    "api.get_role": (READ, "Roles"),
    "api.get_permissions": (READ, "Permissions"),
    "api.get_plugins": (READ, "Plugins"),
    "api.get_providers": (READ, "Providers"),
    "cluster.index": (READ, "Cluster Activity"),
    "metrics.metrics": (READ, "Cluster Activity"),
    "api.get_health": (READ, "Website"),
    "api.get_version": (READ, "Website"),
    "api.get_openapi": (READ, "Website"),
}  # fmt: skip


def role_permissions(role: Role) -> list[Permission]:
    """What ``role`` may do, as sorted Airflow permissions: every one some endpoint it
    may call needs."""
    granted = {
        permission
        for endpoint, permission in AIRFLOW_PERMISSION.items()
        if endpoint in PERMISSIONS and role >= PERMISSIONS[endpoint]
    }
    return sorted(granted, key=lambda p: (p[1], p[0]))


def all_permissions() -> dict[str, list[str]]:
    """``action → resources`` of every permission some role has, as ``/permissions`` lists."""
    by_action: dict[str, set[str]] = {}
    for endpoint, (action, resource) in AIRFLOW_PERMISSION.items():
        if endpoint in PERMISSIONS:
            by_action.setdefault(action, set()).add(resource)
    return {action: sorted(resources) for action, resources in sorted(by_action.items())}
