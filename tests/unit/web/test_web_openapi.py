"""The OpenAPI document is valid and describes every route of the API blueprint."""

from __future__ import annotations

import re

from flask import Flask
from openapi_spec_validator import validate
from web_harness import Api

from cluster.web.permissions import PERMISSIONS


def test_the_document_is_valid_openapi(admin: Api) -> None:
    document = admin.get("/api/v1/openapi.json").get_json()
    validate(document)
    assert document["openapi"].startswith("3.1")
    assert set(document["components"]["securitySchemes"]) == {"Basic", "Bearer", "SessionCookie"}


def test_every_api_route_is_documented(app: Flask, admin: Api) -> None:
    document = admin.get("/api/v1/openapi.json").get_json()
    prefix = document["servers"][0]["url"]
    documented = {
        (method.upper(), prefix + path)
        for path, item in document["paths"].items()
        for method in item
    }
    routed = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("api."):
            path = re.sub(r"<(?:[^:>]+:)?(\w+)>", r"{\1}", rule.rule)
            for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
                routed.add((method, path))
    assert documented == routed


def test_operations_say_their_parameters_body_and_role(admin: Api) -> None:
    paths = admin.get("/api/v1/openapi.json").get_json()["paths"]
    listing = paths["/dags"]["get"]
    assert {p["name"] for p in listing["parameters"]} >= {"limit", "offset", "tags", "paused"}
    trigger = paths["/dags/{dag_id}/dagRuns"]["post"]
    assert trigger["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert trigger["x-required-role"] == PERMISSIONS["api.post_dag_run"].label == "User"
    assert {"400", "401", "403", "404", "409"} <= set(trigger["responses"])
    error = paths["/importErrors/{import_error_id}"]["get"]["parameters"][0]
    assert error["schema"]["type"] == "integer"


def test_connection_schemas_have_no_password_in_responses(admin: Api) -> None:
    schemas = admin.get("/api/v1/openapi.json").get_json()["components"]["schemas"]
    assert "password" not in schemas["Connection"]["properties"]
    assert "password" in schemas["ConnectionBody"]["properties"]
