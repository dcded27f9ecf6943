"""Declared API operations: one decorator gives a view its route, its schemas and its docs.

An operation names its query model, body model and response model (pydantic). The
same declaration drives three things, so they cannot drift apart: input validation
before the view runs (a violation is a 400 problem), serialization of what the view
returns, and the OpenAPI document (:mod:`cluster.web.api.openapi`). Views receive
path parameters, ``query=`` and ``body=`` as keyword arguments and return a model
(or ``None`` for 204), or on hot paths a :class:`JsonBody` of the same shape.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Response, request
from pydantic import BaseModel
from pydantic_core import to_json

JSON = "application/json"


@dataclass(frozen=True, slots=True)
class JsonBody:
    """A response already shaped as the operation's response model, written as JSON
    without building the model.

    For list endpoints that are polled hard and whose fields come straight from typed
    metastore columns (the DAG list): building and validating a model per item cost a
    third of such a request. pydantic's own serializer writes it, so dates and numbers
    look exactly as a model would write them; the endpoint's tests validate the output
    against the declared model. ``data`` may also be that JSON already written (a view
    reused from :mod:`cluster.web.view_cache`).
    """

    data: dict[str, Any] | bytes

    def encoded(self) -> bytes:
        """The JSON text of :attr:`data`."""
        return self.data if isinstance(self.data, bytes) else to_json(self.data)


#: a view's result; a :class:`flask.Response` is sent as it is (a DAG file's plain text)
View = Callable[..., BaseModel | JsonBody | Response | None]


@dataclass(frozen=True)
class Operation:
    """One HTTP method on one route of the API."""

    name: str
    rule: str
    method: str
    tag: str
    view: View
    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    status: int = 200
    #: the view may also answer ``text/plain`` (a :class:`flask.Response`)
    plain_text: bool = False

    @property
    def summary(self) -> str:
        return (inspect.getdoc(self.view) or self.name).splitlines()[0]

    @property
    def description(self) -> str:
        return inspect.getdoc(self.view) or self.summary


class Routes:
    """The operations of one API module, all under one OpenAPI tag."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.operations: list[Operation] = []

    def operation(
        self,
        rule: str,
        method: str,
        *,
        query: type[BaseModel] | None = None,
        body: type[BaseModel] | None = None,
        response: type[BaseModel] | None = None,
        status: int = 200,
        plain_text: bool = False,
    ) -> Callable[[View], View]:
        """Declare ``view`` as ``method rule``; its endpoint is the function's name."""

        def decorator(view: View) -> View:
            self.operations.append(
                Operation(
                    view.__name__,
                    rule,
                    method,
                    self.tag,
                    view,
                    query,
                    body,
                    response,
                    status,
                    plain_text,
                )
            )
            return view

        return decorator


def register(blueprint: Blueprint, operations: list[Operation]) -> None:
    """Add every operation to ``blueprint`` as a validating, serializing view."""
    for op in operations:
        blueprint.add_url_rule(op.rule, op.name, _dispatcher(op), methods=[op.method])


def _dispatcher(op: Operation) -> Callable[..., Response]:
    def dispatch(**path: Any) -> Response:
        kwargs = dict(path)
        if op.query is not None:
            kwargs["query"] = parse_query(op.query)
        if op.body is not None:
            kwargs["body"] = parse_body(op.body)
        result = op.view(**kwargs)
        if result is None:
            return Response(status=op.status)
        if isinstance(result, JsonBody):
            return Response(result.encoded(), op.status, mimetype=JSON)
        if isinstance(result, Response):
            return result
        # pydantic writes the JSON itself: one pass in Rust, not a dict for json.dumps
        return Response(result.model_dump_json(by_alias=True), op.status, mimetype=JSON)

    dispatch.__name__ = op.name
    dispatch.__doc__ = op.view.__doc__
    return dispatch


def parse_query(model: type[BaseModel]) -> BaseModel:
    """The query string as ``model``; repeated keys fill list fields (``?state=a&state=b``).

    :raises pydantic.ValidationError: turned into a 400 problem.
    """
    data: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        key = field.alias or name
        if key not in request.args:
            continue
        many = is_list(field.annotation)
        data[key] = request.args.getlist(key) if many else request.args.get(key)
    return model.model_validate(data)


def parse_body(model: type[BaseModel]) -> BaseModel:
    """The JSON body as ``model``; an empty body is ``{}`` (all-optional bodies).

    :raises pydantic.ValidationError: for bad JSON or a schema violation (400).
    """
    return model.model_validate_json(request.get_data() or b"{}")


def is_list(annotation: Any) -> bool:
    """Whether a field annotation is a list (or an optional list)."""
    if typing.get_origin(annotation) is list:
        return True
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return any(is_list(arg) for arg in typing.get_args(annotation))
    return False
