"""``/health``, ``/version`` and ``/openapi.json`` of the API."""

from __future__ import annotations

from flask import current_app

from cluster import __version__
from cluster.web.api.admin_schemas import Health, OpenApiDocument, Version
from cluster.web.api.operations import Routes
from cluster.web.health import check_health
from cluster.web.problems import ApiProblem

routes = Routes("Monitoring")

#: where :func:`cluster.web.api.build_blueprint` leaves the generated document
OPENAPI_EXTENSION = "tradewind.openapi"


@routes.operation("/health", "GET", response=Health)
def get_health() -> Health:
    """The metastore's and the scheduler's health, as ``GET /health`` (503 when unhealthy)."""
    body, healthy = check_health()
    if not healthy:
        raise ApiProblem(503, f"the metastore cannot be reached: {body['metastore']['detail']}")
    scheduler = dict(body["scheduler"])
    if scheduler["status"] not in ("healthy", "unhealthy"):
        scheduler["status"] = None
    scheduler["latest_scheduler_heartbeat"] = scheduler.get("latest_heartbeat")
    return Health.model_validate(
        {
            "metadatabase": {"status": body["metastore"]["status"]},
            "metastore": body["metastore"],
            "scheduler": scheduler,
        }
    )


@routes.operation("/version", "GET", response=Version)
def get_version() -> Version:
    """The Tradewind version this webserver runs."""
    return Version(version=__version__, git_version=None)


@routes.operation("/openapi.json", "GET", response=OpenApiDocument)
def get_openapi() -> OpenApiDocument:
    """This API's OpenAPI 3.1 document, generated from the same schemas that validate input."""
    return OpenApiDocument.model_validate(current_app.extensions[OPENAPI_EXTENSION])
