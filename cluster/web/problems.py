"""Errors as JSON problem documents: ``{"type", "title", "status", "detail"}`` with a 4xx or 5xx code.

``type`` is required by Airflow's ``Error`` schema, so clients generated from Airflow's
OpenAPI document parse Tradewind's errors; it names the section of Airflow's API
reference that describes the status (``…#section/Errors/NotFound``).

Every exception that leaves a view comes here once (:func:`problem_for`), so a bad
input is a 400 and never a 500: validation errors, Tradewind's own error tree, HTTP
errors from routing, and metastore failures (503: this webserver cannot reach the
metastore, try another one).
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from flask import Response, jsonify
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
from werkzeug.exceptions import HTTPException, InternalServerError

from cluster.errors import (
    AlreadyExistsError,
    DagDefinitionError,
    InvalidTransition,
    MetastoreError,
    NotFoundError,
    ParamValidationError,
    TradewindError,
    UsageError,
)

log = logging.getLogger(__name__)

_STATUS_OF: tuple[tuple[type[TradewindError], int], ...] = (
    (NotFoundError, 404),
    (AlreadyExistsError, 409),
    (ParamValidationError, 400),
    (UsageError, 400),
    (InvalidTransition, 409),
    (DagDefinitionError, 409),
    (MetastoreError, 503),
)


class ApiProblem(Exception):
    """Raised by views to answer with a specific status and detail."""

    def __init__(self, status: int, detail: str, *, headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers or {}


#: Airflow's names of the error statuses its API reference describes
_AIRFLOW_ERRORS = {
    400: "BadRequest",
    401: "Unauthenticated",
    403: "PermissionDenied",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "AlreadyExists",
    500: "Unknown",
}
ERROR_TYPES = "https://airflow.apache.org/docs/apache-airflow/2.10.5/stable-rest-api-ref.html"


def problem_type(status: int) -> str:
    """The ``type`` of a problem with ``status``: Airflow's error section, else ``about:blank``."""
    name = _AIRFLOW_ERRORS.get(status)
    return f"{ERROR_TYPES}#section/Errors/{name}" if name else "about:blank"


def problem(status: int, detail: str, *, headers: dict[str, str] | None = None) -> Response:
    """A JSON problem response."""
    body: dict[str, Any] = {
        "type": problem_type(status),
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    response = jsonify(body)
    response.status_code = status
    response.headers.update(headers or {})
    return response


def problem_for(exc: BaseException) -> Response:
    """The response for an exception that escaped a view (or the request's commit)."""
    if isinstance(exc, InternalServerError) and exc.original_exception is not None:
        return problem_for(exc.original_exception)
    if isinstance(exc, ApiProblem):
        return problem(exc.status, exc.detail, headers=exc.headers)
    if isinstance(exc, HTTPException):
        code = exc.code or 500
        return problem(code, exc.description or HTTPStatus(code).phrase)
    if isinstance(exc, ValidationError):
        return problem(400, describe_validation_error(exc))
    if isinstance(exc, TradewindError):
        return _tradewind_problem(exc)
    if isinstance(exc, OverflowError):  # a date or number from the input out of range
        return problem(400, f"a value is out of range: {exc}")
    if isinstance(exc, IntegrityError):
        return problem(409, "the change conflicts with existing data; reload and try again")
    if isinstance(exc, OperationalError | SQLAlchemyError):
        log.warning("metastore error during a request: %s", exc)
        return problem(503, "the metastore cannot be reached; try again or another webserver")
    log.error("unexpected error in a request", exc_info=exc)
    return problem(500, "an unexpected error happened; the webserver log has the details")


def _tradewind_problem(exc: TradewindError) -> Response:
    for kind, status in _STATUS_OF:
        if isinstance(exc, kind):
            return problem(status, str(exc))
    log.error("server-side error in a request: %s", exc)
    return problem(500, str(exc))


def describe_validation_error(exc: ValidationError) -> str:
    """One line per problem: ``where: what``, as users of the API can act on it."""
    parts = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(p) for p in error["loc"]) or "body"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts) or "invalid input"
