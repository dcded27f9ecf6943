"""Tradewind's answers checked against Airflow's own OpenAPI document.

``tests/fixtures/airflow/v1.yaml`` is Airflow 2.10.5's stable REST API, byte for byte.
For every operation of it that Tradewind serves (same method, same path), schemathesis
generates requests from *Airflow's* schema, valid and invalid ones (the path naming
seeded objects, so answers carry real data rather than 404s), against the app on
SQLite, and every answer must be no 5xx and conform to Airflow's response schema for
its status (a bad request is a 4xx JSON problem). The operations Tradewind
does not serve are listed with the reason, and the list must stay true both ways.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import schemathesis
import yaml
from cryptography.fernet import Fernet
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)
from web_harness import bearer, build_app, context_of, seed

from cluster.config import load_settings
from cluster.dagfiles.storage import path_hash
from cluster.metastore import audit, users
from cluster.metastore.models import DagCode
from cluster.web.api import all_operations
from cluster.web.api.openapi import _path

V1 = Path(__file__).parents[2] / "fixtures" / "airflow" / "v1.yaml"
#: generated requests per operation: ~65 operations stay well under two minutes
EXAMPLES = 12

#: why an instance does not run is not served (see ``NOT_SERVED``)
DEPENDENCIES = (
    "the policy decides from snapshots only the scheduler loads (previous-run states, "
    "mapped lengths, pool and DAG loads; the webserver may not import the scheduler) and "
    "select_to_queue keeps no reason for an instance passed over: an answer would need "
    "a second copy of that loading and of the queueing rules"
)

#: Airflow operations Tradewind does not serve, and why (the README lists them too)
NOT_SERVED = {
    "get_config": "the configuration holds secrets (Fernet key, metastore URL)",
    "get_value": "the configuration holds secrets (Fernet key, metastore URL)",
    "test_connection": "would run connection code inside the webserver",
    "post_role": "roles are Airflow's five fixed roles",
    "patch_role": "roles are Airflow's five fixed roles",
    "delete_role": "roles are Airflow's five fixed roles",
    "reparse_dag_file": "the DAG processor rereads changed files itself",
    "get_extra_links": "Tradewind has no operator extra links",
    "get_task_instance_dependencies": DEPENDENCIES,
    "get_mapped_task_instance_dependencies": DEPENDENCIES,
}

#: path parameters naming what :func:`web_harness.seed` creates
SEEDED = {
    "dag_id": "etl",
    "dag_run_id": "run1",
    "task_id": "extract",
    "map_index": 0,
    "xcom_key": "return_value",
    "import_error_id": 1,
    "variable_key": "greeting",
    "connection_id": "db",
    "pool_name": "etl_pool",
    "username": "admin",
    "task_try_number": 1,
    "event_log_id": 1,
    "role_name": "Viewer",
    "uri": "s3://bucket/table",
    "file_token": path_hash("/dags/etl.py"),
}


def served() -> set[tuple[str, str]]:
    """``(method, path)`` of every operation Tradewind registers, in OpenAPI form."""
    return {(op.method.upper(), _path(op.rule)[0]) for op in all_operations()}


@cache
def airflow_operations() -> dict[str, tuple[str, str]]:
    """``operationId → (method, path)`` of Airflow's document."""
    document = yaml.load(V1.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    return {
        operation["operationId"]: (method.upper(), path)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if isinstance(operation, dict) and "operationId" in operation
    }


SERVED_IDS = sorted(op for op, key in airflow_operations().items() if key in served())


def test_every_airflow_operation_is_served_or_listed_with_a_reason() -> None:
    missing = {op for op, key in airflow_operations().items() if key not in served()}
    assert missing == set(NOT_SERVED), "serve it, or say in NOT_SERVED why not"
    assert len(SERVED_IDS) >= 60


@cache
def declared_query_parameters() -> dict[str, list[str]]:
    """``operationId → names`` of the query parameters Airflow's document declares."""
    document = yaml.load(V1.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    shared = document["components"]["parameters"]
    found: dict[str, list[str]] = {}
    for item in document["paths"].values():
        for operation in item.values():
            if not isinstance(operation, dict) or "operationId" not in operation:
                continue
            params = [*item.get("parameters", []), *operation.get("parameters", [])]
            params = [shared[p["$ref"].rsplit("/", 1)[1]] if "$ref" in p else p for p in params]
            found[operation["operationId"]] = [p["name"] for p in params if p["in"] == "query"]
    return found


def test_every_query_parameter_airflow_declares_is_read() -> None:
    """A parameter the query model lacks would be ignored without a word (the list left
    unfiltered, the PATCH not masked): every one Airflow declares must be read."""
    ours = {(op.method.upper(), _path(op.rule)[0]): op for op in all_operations()}
    ignored = {}
    for operation_id, names in declared_query_parameters().items():
        op = ours.get(airflow_operations()[operation_id])
        if op is None:
            continue
        model = op.query.model_fields if op.query is not None else {}
        read = {field.alias or name for name, field in model.items()}
        if missing := [n for n in names if n not in read]:
            ignored[operation_id] = missing
    assert ignored == {}
    assert sum(map(len, declared_query_parameters().values())) > 100


def writable_fields(document: dict[str, Any], schema: dict[str, Any]) -> set[str]:
    """The properties of a request body's schema that are not read-only (``allOf`` merged)."""
    schema = resolved(document, schema)
    found = set().union(*(writable_fields(document, part) for part in schema.get("allOf", [])))
    properties = schema.get("properties", {}).items()
    return found | {
        name for name, spec in properties if not resolved(document, spec).get("readOnly")
    }


def resolved(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """``schema``, or the component its ``$ref`` names."""
    if "$ref" not in schema:
        return schema
    found: dict[str, Any] = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return found


def test_every_writable_body_field_airflow_declares_is_accepted() -> None:
    """Request bodies refuse unknown fields (400), so a field Airflow's document lets a
    client send must be one the body model knows (or the model must ignore extras)."""
    document = yaml.load(V1.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    ours = {(op.method.upper(), _path(op.rule)[0]): op for op in all_operations()}
    refused = {}
    for path, item in document["paths"].items():
        for method, operation in item.items():
            op = ours.get((method.upper(), path))
            if op is None or op.body is None or "requestBody" not in operation:
                continue
            schema = operation["requestBody"]["content"]["application/json"]["schema"]
            known = {field.alias or name for name, field in op.body.model_fields.items()}
            missing = writable_fields(document, schema) - known
            if missing and op.body.model_config.get("extra") == "forbid":
                refused[operation["operationId"]] = sorted(missing)
    assert refused == {}


@dataclass(frozen=True)
class Target:
    schema: Any
    headers: dict[str, str]


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    """One seeded app for every operation (building one per operation cost more than the
    requests), with Airflow's document bound to it and an Admin's token."""
    home = tmp_path_factory.mktemp("home")
    settings = load_settings(
        env={},
        home=home,
        overrides={
            "core": {"fernet_key": Fernet.generate_key().decode()},
            "metastore": {"url": f"sqlite:///{home / 'tradewind.db'}"},
            "webserver": {"secret_key": "schema-test"},
        },
    )
    app = build_app(settings)
    with context_of(app).session_factory.begin() as session:
        seed(session, settings)
        users.create_user("admin", "pw", role="Admin", session=session)
        token = users.create_api_token("admin", "schema", session=session)[1]
        audit.record_event("trigger", session=session, username="admin", dag_id="etl")
        session.add(
            DagCode(
                fileloc_hash=SEEDED["file_token"],
                fileloc="/dags/etl.py",
                fingerprint="f",
                source_code="print('etl')\n",
            )
        )
    schema = schemathesis.openapi.from_path(str(V1))
    schema.app = app
    yield Target(schema, bearer(token))
    context_of(app).engine.dispose()


def deletes_last(operation_id: str) -> tuple[bool, str]:
    """Deleting operations run after the others, so seeded objects exist while read."""
    method, _ = airflow_operations()[operation_id]
    return method == "DELETE", operation_id


@pytest.mark.parametrize("operation_id", sorted(SERVED_IDS, key=deletes_last))
def test_answers_follow_airflows_schema(operation_id: str, target: Target) -> None:
    operation = target.schema.find_operation_by_id(operation_id)
    names = re.findall(r"{(\w+)}", operation.path)
    path = {n: SEEDED[n] for n in names}
    strategy = st.one_of(
        operation.as_strategy(path_parameters=path),
        operation.as_strategy(GenerationMode.NEGATIVE, path_parameters=path),
    )
    headers = target.headers
    statuses: list[int] = []

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy, _=st.just(None))
    def check(case: Any, _: None) -> None:
        response = case.call(headers=headers)
        statuses.append(response.status_code)
        case.validate_response(
            response,
            checks=[not_a_server_error, content_type_conformance, response_schema_conformance],
            headers=headers,
        )

    check()
    assert statuses, "schemathesis generated no request"
