"""Errors on HTML pages: the same status and message as the API's problems, as a page.

A missing DAG is a 404 page with the message that says what to do, not a JSON document
in the middle of the UI.
"""

from __future__ import annotations

from flask import Response, render_template

from cluster.web.problems import problem_for


def page_error(exc: BaseException) -> Response:
    """The HTML page for an exception that escaped a page view."""
    problem = problem_for(exc)
    body = problem.get_json(silent=True) or {}
    html = render_template(
        "error.html",
        status=problem.status_code,
        title=body.get("title", "Error"),
        detail=body.get("detail", ""),
    )
    response = Response(html, status=problem.status_code, mimetype="text/html")
    for name, value in problem.headers.items():
        if name.lower() not in ("content-type", "content-length"):
            response.headers[name] = value
    return response
