"""The REST API, ``/api/v1``: Airflow-compatible JSON over the metastore and the actions.

:func:`install_api` adds the blueprint to an app and generates the OpenAPI document
once, from the same operations.
"""

from __future__ import annotations

from flask import Blueprint, Flask

from cluster.web.api import (
    accounts,
    batches,
    connections,
    dag_details,
    dag_runs,
    dags,
    datasets,
    marking,
    monitor,
    pools,
    roles,
    slas,
    task_instances,
    tries,
    variables,
)
from cluster.web.api.openapi import build_document
from cluster.web.api.operations import Operation, Routes, register
from cluster.web.permissions import PERMISSIONS

API_PREFIX = "/api/v1"
BLUEPRINT = "api"

ROUTES: tuple[Routes, ...] = (
    dags.routes,
    dag_details.routes,
    dag_details.stats_routes,
    dag_details.warning_routes,
    batches.run_routes,
    dag_runs.routes,
    batches.instance_routes,
    task_instances.routes,
    marking.routes,
    marking.dag_routes,
    tries.routes,
    task_instances.xcom_routes,
    dags.import_error_routes,
    variables.routes,
    connections.routes,
    pools.routes,
    accounts.user_routes,
    accounts.event_log_routes,
    monitor.routes,
    datasets.routes,
    slas.routes,
    roles.role_routes,
    roles.permission_routes,
    roles.plugin_routes,
    roles.provider_routes,
)


def all_operations() -> list[Operation]:
    return [op for routes in ROUTES for op in routes.operations]


def install_api(app: Flask, *, root_path: str = "") -> None:
    """Register ``/api/v1`` on ``app`` and store its OpenAPI document.

    :param root_path: the path under which the webserver is published (from
        ``webserver.base_url``), so the document's server URL is right behind a proxy.
    """
    operations = all_operations()
    blueprint = Blueprint(BLUEPRINT, __name__, url_prefix=API_PREFIX)
    register(blueprint, operations)
    app.register_blueprint(blueprint)
    app.extensions[monitor.OPENAPI_EXTENSION] = build_document(
        operations, server_url=root_path.rstrip("/") + API_PREFIX, permissions=PERMISSIONS
    )
