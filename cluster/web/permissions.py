"""Who may call what: the one table of endpoint → minimum role.

The roles are Airflow's five default roles with Airflow's default permissions (those of
Airflow 2.10.5 with its FAB auth manager), each including the ones below it:

- ``Public`` may do nothing but sign in (Airflow gives it no permission);
- ``Viewer`` reads DAGs, their code, runs, task instances, logs, XComs, datasets,
  import errors and pools;
- ``User`` also triggers, pauses, clears, marks and deletes runs and task instances,
  and deletes whole DAGs (every run of them);
- ``Op`` also manages variables, connections and pools, deletes queued dataset
  events, and reads plugins and providers;
- ``Admin`` also reads the audit log and manages users, and reads roles and permissions.

:mod:`cluster.web.role_permissions` names each endpoint's Airflow permission
(``can_read`` on ``DAGs``, …), so ``/roles`` and ``/permissions`` are derived from this
table and cannot tell anything but what it enforces.

:func:`cluster.web.auth.authorize` checks every request against :data:`PERMISSIONS`
in one place. An endpoint missing from both tables is refused to everyone (fail
closed), and a test iterates the table over every role.
"""

from __future__ import annotations

from enum import IntEnum


class Role(IntEnum):
    """Roles ordered by power, so "at least" is a comparison."""

    PUBLIC = 0
    VIEWER = 1
    USER = 2
    OP = 3
    ADMIN = 4

    @classmethod
    def parse(cls, name: str) -> Role | None:
        """The role stored as ``name`` in the ``user`` table; ``None`` for unknown names."""
        return _BY_NAME.get(name)

    @property
    def label(self) -> str:
        return _NAMES[self]


_NAMES = {
    Role.ADMIN: "Admin",
    Role.OP: "Op",
    Role.USER: "User",
    Role.VIEWER: "Viewer",
    Role.PUBLIC: "Public",
}
_BY_NAME = {name: role for role, name in _NAMES.items()}

#: endpoints anyone may call, signed in or not
PUBLIC: frozenset[str] = frozenset(
    {"static", "favicon", "health.health", "pages.login", "pages.logout"}
)

PERMISSIONS: dict[str, Role] = {
    # pages: DAGs and a DAG's tabs
    "dags.index": Role.VIEWER,
    "dags.pause": Role.USER,
    "dags.trigger": Role.USER,
    "dags.delete": Role.USER,
    "dag.grid": Role.VIEWER,
    "dag.grid_json": Role.VIEWER,
    "dag.graph": Role.VIEWER,
    "dag.code": Role.VIEWER,
    "dag.runs": Role.VIEWER,
    "dag.details": Role.VIEWER,
    "dag_charts.gantt": Role.VIEWER,
    "dag_charts.duration": Role.VIEWER,
    "dag_charts.tries": Role.VIEWER,
    "dag_charts.landing": Role.VIEWER,
    "dag_charts.calendar": Role.VIEWER,
    # pages: runs and task instances (GET shows the confirmation, POST acts)
    "runs.show": Role.VIEWER,
    "runs.mark": Role.USER,
    "runs.clear": Role.USER,
    "runs.delete": Role.USER,
    "task_instances.show": Role.VIEWER,
    "task_instances.log_json": Role.VIEWER,
    "task_instances.panel": Role.VIEWER,
    "task_instances.clear": Role.USER,
    "task_instances.mark": Role.USER,
    # pages: browse
    "browse.runs": Role.VIEWER,
    "browse.task_instances": Role.VIEWER,
    "browse.audit_log": Role.ADMIN,
    "browse.import_errors": Role.VIEWER,
    "browse.sla_misses": Role.VIEWER,
    "browse.datasets": Role.VIEWER,
    # pages: admin
    "admin.variables_list": Role.OP,
    "admin.variable_create": Role.OP,
    "admin.variable_edit": Role.OP,
    "admin.variable_delete": Role.OP,
    "admin.connections_list": Role.OP,
    "admin.connection_create": Role.OP,
    "admin.connection_edit": Role.OP,
    "admin.connection_delete": Role.OP,
    "admin.pools_list": Role.VIEWER,
    "admin.pool_create": Role.OP,
    "admin.pool_edit": Role.OP,
    "admin.pool_delete": Role.OP,
    "users.index": Role.ADMIN,
    "users.create": Role.ADMIN,
    "users.set_role": Role.ADMIN,
    "users.delete": Role.ADMIN,
    "cluster.index": Role.VIEWER,
    # Prometheus metrics (cluster.metrics.webserver)
    "metrics.metrics": Role.VIEWER,
    # monitoring and the API description
    "api.get_health": Role.VIEWER,
    "api.get_version": Role.VIEWER,
    "api.get_openapi": Role.VIEWER,
    # DAGs
    "api.get_dags": Role.VIEWER,
    "api.get_dag": Role.VIEWER,
    "api.get_dag_details": Role.VIEWER,
    "api.get_tasks": Role.VIEWER,
    "api.get_task": Role.VIEWER,
    "api.get_dag_source": Role.VIEWER,
    "api.get_dag_stats": Role.VIEWER,
    "api.patch_dag": Role.USER,
    "api.patch_dags": Role.USER,
    "api.delete_dag": Role.USER,
    "api.get_dag_warnings": Role.VIEWER,
    "api.get_import_errors": Role.VIEWER,
    "api.get_import_error": Role.VIEWER,
    # runs
    "api.get_dag_runs": Role.VIEWER,
    "api.get_dag_run": Role.VIEWER,
    "api.get_dag_runs_batch": Role.VIEWER,
    "api.post_dag_run": Role.USER,
    "api.patch_dag_run": Role.USER,
    "api.delete_dag_run": Role.USER,
    "api.clear_dag_run": Role.USER,
    "api.set_dag_run_note": Role.USER,
    # task instances and XComs
    "api.get_task_instances": Role.VIEWER,
    "api.get_task_instance": Role.VIEWER,
    "api.get_task_instance_tries": Role.VIEWER,
    "api.get_task_instance_try_details": Role.VIEWER,
    "api.get_mapped_task_instance_tries": Role.VIEWER,
    "api.get_mapped_task_instance_try_details": Role.VIEWER,
    "api.get_task_instances_batch": Role.VIEWER,
    "api.get_mapped_task_instances": Role.VIEWER,
    "api.get_mapped_task_instance": Role.VIEWER,
    "api.patch_task_instance": Role.USER,
    "api.patch_mapped_task_instance": Role.USER,
    "api.post_set_task_instances_state": Role.USER,
    "api.set_task_instance_note": Role.USER,
    "api.set_mapped_task_instance_note": Role.USER,
    "api.post_clear_task_instances": Role.USER,
    "api.get_log": Role.VIEWER,
    "api.get_xcom_entries": Role.VIEWER,
    "api.get_xcom_entry": Role.VIEWER,
    # variables, connections, pools, audit log
    "api.get_variables": Role.OP,
    "api.get_variable": Role.OP,
    "api.post_variable": Role.OP,
    "api.patch_variable": Role.OP,
    "api.delete_variable": Role.OP,
    "api.get_connections": Role.OP,
    "api.get_connection": Role.OP,
    "api.post_connection": Role.OP,
    "api.patch_connection": Role.OP,
    "api.delete_connection": Role.OP,
    "api.get_pools": Role.VIEWER,
    "api.get_pool": Role.VIEWER,
    "api.post_pool": Role.OP,
    "api.patch_pool": Role.OP,
    "api.delete_pool": Role.OP,
    "api.get_event_logs": Role.ADMIN,
    "api.get_event_log": Role.ADMIN,
    # datasets
    "api.get_datasets": Role.VIEWER,
    "api.get_dataset": Role.VIEWER,
    "api.get_dataset_events": Role.VIEWER,
    "api.create_dataset_event": Role.USER,
    "api.get_upstream_dataset_events": Role.VIEWER,
    "api.get_dag_dataset_queued_events": Role.VIEWER,
    "api.delete_dag_dataset_queued_events": Role.OP,
    "api.get_dag_dataset_queued_event": Role.VIEWER,
    "api.delete_dag_dataset_queued_event": Role.OP,
    "api.get_dataset_queued_events": Role.VIEWER,
    "api.delete_dataset_queued_events": Role.OP,
    "api.get_sla_misses": Role.VIEWER,
    # users
    "api.get_users": Role.ADMIN,
    "api.get_user": Role.ADMIN,
    "api.post_user": Role.ADMIN,
    "api.patch_user": Role.ADMIN,
    "api.delete_user": Role.ADMIN,
    # roles and permissions, plugins and providers
    "api.get_roles": Role.ADMIN,
    "api.get_role": Role.ADMIN,
    "api.get_permissions": Role.ADMIN,
    "api.get_plugins": Role.OP,
    "api.get_providers": Role.OP,
}


def allows(role_name: str, endpoint: str) -> bool:
    """Whether a user with ``role_name`` may call ``endpoint`` (unknown ones: nobody)."""
    needed = PERMISSIONS.get(endpoint)
    role = Role.parse(role_name)
    return needed is not None and role is not None and role >= needed
