"""A webserver's metrics, the request hooks that record them, and ``GET /metrics``.

Each request is counted and timed by endpoint (the Flask endpoint name, so the label
has as many values as there are routes, never one per URL) and status. ``/metrics``
needs a signed-in user like every page (a Prometheus job scrapes it with basic auth or
an API token); it is in :data:`cluster.web.permissions.PERMISSIONS` as
``metrics.metrics``. Under gunicorn, ``tradewind webserver`` switches to multiprocess
mode before forking its workers, so any worker's ``/metrics`` tells about all of them.
"""

from __future__ import annotations

import time

from flask import Blueprint, Flask, Response, current_app, request
from prometheus_client import CollectorRegistry, Counter, Histogram

from cluster.metrics.exposition import exposition_registry, render

EXTENSION = "tradewind.metrics"
_START = "tradewind.request_start"
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

bp = Blueprint("metrics", __name__)


class WebserverMetrics:
    """Request counts and latencies of one webserver process."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self._requests = Counter(
            "tradewind_http_requests",
            "HTTP requests answered, by endpoint and status.",
            ["endpoint", "status"],
            registry=self.registry,
        )
        self._latency = Histogram(
            "tradewind_http_request_duration_seconds",
            "Time to answer an HTTP request, by endpoint.",
            ["endpoint"],
            buckets=REQUEST_BUCKETS,
            registry=self.registry,
        )

    def observe_request(self, endpoint: str, status: int, seconds: float) -> None:
        self._requests.labels(endpoint=endpoint, status=str(status)).inc()
        self._latency.labels(endpoint=endpoint).observe(seconds)


def install_metrics(app: Flask) -> WebserverMetrics:
    """Time every request of ``app`` and serve ``/metrics``.

    The start time is taken in the WSGI layer, before authentication (which may
    answer a request itself), so refused requests are timed too.
    """
    metrics = WebserverMetrics()
    app.extensions[EXTENSION] = metrics
    inner = app.wsgi_app

    def timed(environ: dict[str, object], start_response: object) -> object:
        environ[_START] = time.perf_counter()
        return inner(environ, start_response)  # type: ignore[arg-type]

    app.wsgi_app = timed  # type: ignore[method-assign,assignment]

    @app.after_request
    def record(response: Response) -> Response:
        started = request.environ.get(_START)
        if isinstance(started, float):
            endpoint = request.endpoint or "unmatched"
            metrics.observe_request(endpoint, response.status_code, time.perf_counter() - started)
        return response

    app.register_blueprint(bp)
    return metrics


@bp.get("/metrics")
def metrics() -> Response:
    """Every metric of this webserver (all its workers under gunicorn), as text."""
    own: WebserverMetrics = current_app.extensions[EXTENSION]
    body, content_type = render(exposition_registry(own.registry))
    return Response(body, content_type=content_type)
