"""The OpenAPI 3.1 document of the REST API, generated from the declared operations.

OpenAPI 3.1 uses JSON Schema 2020-12, which is what pydantic emits, so the schemas
that validate requests are the ones published: they cannot drift apart. Each
operation also says which role it needs (``x-required-role``, from
:data:`cluster.web.permissions.PERMISSIONS`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from cluster import __version__
from cluster.web.api.operations import Operation
from cluster.web.api.schemas import Problem
from cluster.web.permissions import Role

REF = "#/components/schemas/{model}"
_PATH_PARAM = re.compile(r"<(?:(\w+)(?:\(([^)]*)\))?:)?(\w+)>")

SECURITY_SCHEMES = {
    "Basic": {"type": "http", "scheme": "basic", "description": "Username and password."},
    "Bearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "An API token from 'tradewind users token create'.",
    },
    "SessionCookie": {
        "type": "apiKey",
        "in": "cookie",
        "name": "tradewind_session",
        "description": "The web UI's session; changes need the X-CSRFToken header.",
    },
}

ERROR_RESPONSES = {
    "400": ("BadRequest", "The input is malformed or breaks the schema."),
    "401": ("Unauthorized", "No valid credentials were given."),
    "403": ("Forbidden", "The user's role does not allow this."),
    "404": ("NotFound", "What the path names does not exist."),
    "409": ("Conflict", "The change conflicts with the current state."),
    "429": ("TooManyRequests", "Too many failed logins from this address."),
    "503": ("Unavailable", "This webserver cannot reach the metastore."),
}
#: only operations that answer in more than one media type (``plain_text``)
NOT_ACCEPTABLE = ("NotAcceptable", "The Accept header allows none of the answer's types.")
#: gunicorn answers a request line over its ``limit_request_line`` before the API sees
#: it: a 414 as an HTML page, the one error that is not a problem document
URI_TOO_LONG = {
    "description": "The path and query are longer than the HTTP server takes (4094 bytes); "
    "the answer is gunicorn's HTML page.",
    "content": {"text/html": {"schema": {"type": "string"}}},
}


def build_document(
    operations: list[Operation], *, server_url: str, permissions: Mapping[str, Role]
) -> dict[str, Any]:
    """The whole document; ``server_url`` is the API's base path (``/api/v1``)."""
    refs, schemas = _schemas(operations)
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        path, parameters = _path(op.rule)
        parameters += _query_parameters(op, refs, schemas)
        paths.setdefault(path, {})[op.method.lower()] = _operation(
            op, parameters, refs, permissions
        )
    for op in operations:  # query models became parameters; their schemas are not used
        if op.query is not None:
            schemas.pop(_name(refs[(op.query, "validation")]), None)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Tradewind REST API",
            "version": __version__,
            "description": "Airflow-compatible REST API of Tradewind. Errors are JSON "
            'problem documents: {"title", "status", "detail"}.',
        },
        "servers": [{"url": server_url}],
        "tags": [{"name": tag} for tag in dict.fromkeys(op.tag for op in operations)],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "responses": {
                name: _json_response(text, {"$ref": REF.format(model="Problem")})
                for name, text in (*ERROR_RESPONSES.values(), NOT_ACCEPTABLE)
            }
            | {"UriTooLong": URI_TOO_LONG},
            "securitySchemes": SECURITY_SCHEMES,
        },
        "security": [{name: []} for name in SECURITY_SCHEMES],
    }


Key = tuple[Any, Literal["validation", "serialization"]]


def _schemas(operations: list[Operation]) -> tuple[dict[Key, Any], dict[str, Any]]:
    wanted: list[tuple[type[BaseModel], JsonSchemaMode]] = [(Problem, "serialization")]
    for op in operations:
        if op.query is not None:
            wanted.append((op.query, "validation"))
        if op.body is not None:
            wanted.append((op.body, "validation"))
        if op.response is not None:
            wanted.append((op.response, "serialization"))
    refs, top = models_json_schema(list(dict.fromkeys(wanted)), ref_template=REF)
    return dict(refs), dict(top.get("$defs", {}))


def _name(ref: Mapping[str, Any]) -> str:
    return str(ref["$ref"]).rsplit("/", 1)[-1]


def _path(rule: str) -> tuple[str, list[dict[str, Any]]]:
    """``/dags/<dag_id>`` as ``/dags/{dag_id}`` with its path parameters."""
    parameters: list[dict[str, Any]] = []
    for converter, args, name in _PATH_PARAM.findall(rule):
        schema: dict[str, Any] = {"type": "string"}
        if converter == "int":
            schema = {"type": "integer", "minimum": 0}
            limit = re.search(r"max=(\d+)", args)
            if limit:
                schema["maximum"] = int(limit.group(1))
        parameters.append({"name": name, "in": "path", "required": True, "schema": schema})
    return _PATH_PARAM.sub(lambda m: "{" + m.group(3) + "}", rule), parameters


def _query_parameters(
    op: Operation, refs: dict[Key, Any], schemas: dict[str, Any]
) -> list[dict[str, Any]]:
    if op.query is None:
        return []
    schema = schemas[_name(refs[(op.query, "validation")])]
    required = set(schema.get("required", []))
    parameters = []
    for name, prop in schema.get("properties", {}).items():
        parameter: dict[str, Any] = {
            "name": name,
            "in": "query",
            "required": name in required,
            "schema": prop,
        }
        if "description" in prop:
            parameter["description"] = prop["description"]
        parameters.append(parameter)
    return parameters


def _operation(
    op: Operation,
    parameters: list[dict[str, Any]],
    refs: dict[Key, Any],
    permissions: Mapping[str, Role],
) -> dict[str, Any]:
    role = permissions.get(f"api.{op.name}")
    result: dict[str, Any] = {
        "operationId": op.name,
        "summary": op.summary,
        "description": op.description,
        "tags": [op.tag],
        "x-required-role": role.label if role is not None else None,
        "responses": _responses(op, refs),
    }
    if parameters:
        result["parameters"] = parameters
    if op.body is not None:
        required = any(f.is_required() for f in op.body.model_fields.values())
        result["requestBody"] = {
            "required": required,
            "content": {"application/json": {"schema": refs[(op.body, "validation")]}},
        }
    return result


def _responses(op: Operation, refs: dict[Key, Any]) -> dict[str, Any]:
    if op.response is None:
        success: dict[str, Any] = {"description": "Done; no content."}
    else:
        success = _json_response("Success.", refs[(op.response, "serialization")])
        if op.plain_text:
            success["content"]["text/plain"] = {"schema": {"type": "string"}}
    responses = {str(op.status): success}
    for code, (name, _) in ERROR_RESPONSES.items():
        if code == "409" and op.method == "GET":
            continue
        responses[code] = {"$ref": f"#/components/responses/{name}"}
    if op.plain_text:
        responses["406"] = {"$ref": f"#/components/responses/{NOT_ACCEPTABLE[0]}"}
    responses["414"] = {"$ref": "#/components/responses/UriTooLong"}
    return responses


def _json_response(description: str, schema: Mapping[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}
