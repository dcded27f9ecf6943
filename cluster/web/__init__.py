"""The web layer: Flask app factory, authentication, the REST API and (soon) the HTML views.

It talks to the cluster only through the metastore, :mod:`cluster.actions` and the
serialized DAGs; it never imports the scheduler, the executors or the runner.
Run it with ``tradewind webserver`` or any WSGI server: ``cluster.web:create_app()``.
"""

from __future__ import annotations

from cluster.web.app import create_app

__all__ = ["create_app"]
