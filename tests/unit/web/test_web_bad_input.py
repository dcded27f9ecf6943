"""Bad input is a 4xx JSON problem, never a 500."""

from __future__ import annotations

import pytest
from web_harness import Api


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("GET", "/api/v1/dags/nope", None, 404),
        ("GET", "/api/v1/dags/nope/dagRuns", None, 404),
        ("GET", "/api/v1/dags?limit=0", None, 400),
        ("GET", "/api/v1/dags?offset=-1", None, 400),
        ("GET", "/api/v1/dags?paused=maybe", None, 400),
        ("GET", "/api/v1/dags/etl/dagRuns?state=exploded", None, 400),
        ("GET", "/api/v1/dags/etl/dagRuns?logical_date_gte=yesterday", None, 400),
        ("GET", "/api/v1/importErrors/99999999999999999999", None, 404),
        ("GET", "/api/v1/no/such/route", None, 404),
        ("PUT", "/api/v1/dags/etl", {}, 405),
        ("PATCH", "/api/v1/dags/etl", "not json", 400),
        ("PATCH", "/api/v1/dags/etl", {}, 400),
        ("PATCH", "/api/v1/dags/etl", {"is_paused": "sometimes"}, 400),
        ("PATCH", "/api/v1/dags/etl?update_mask=description", {"is_paused": True}, 400),
        ("PATCH", "/api/v1/dags/etl", [1, 2], 400),
        ("POST", "/api/v1/dags/etl/dagRuns", {"logical_date": "2024-01-01T00:00:00"}, 400),
        ("POST", "/api/v1/dags/etl/dagRuns", {"dag_run_id": "has space"}, 400),
        ("POST", "/api/v1/dags/etl/dagRuns", {"conf": "x"}, 400),
        ("POST", "/api/v1/dags/etl/dagRuns", {"logical_date": "9999-12-31T23:59:59-23:59"}, 400),
        ("GET", "/api/v1/dags?offset=99999999999999999999", None, 400),
        ("PATCH", "/api/v1/dags/etl/dagRuns/run1", {"state": "running"}, 400),
        ("PATCH", "/api/v1/dags/etl/dagRuns/run1/taskInstances/load", {"new_state": "x"}, 400),
        ("POST", "/api/v1/pools", {"name": "p", "slots": -1}, 400),
        ("PATCH", "/api/v1/pools/etl_pool", {"name": "renamed"}, 400),
        ("POST", "/api/v1/connections", {"connection_id": "c"}, 400),
        ("PATCH", "/api/v1/variables/greeting", {"key": "other", "value": "v"}, 400),
        ("DELETE", "/api/v1/variables/missing", None, 404),
        # a map index past its maximum matches no rule, whatever the method (it was a 405)
        ("PATCH", "/api/v1/dags/etl/dagRuns/run1/taskInstances/load/2147483648", {}, 404),
        ("GET", "/api/v1/dags/etl/dagRuns/run1/taskInstances/load/2147483648", None, 404),
    ],
)
def test_bad_input_is_a_json_problem(
    admin: Api, method: str, path: str, body: object, status: int
) -> None:
    if isinstance(body, str):
        kwargs: dict[str, object] = {"data": body, "content_type": "application/json"}
    else:
        kwargs = {} if body is None else {"json": body}
    response = admin.client.open(
        path, method=method, headers={"Authorization": f"Bearer {admin.token}"}, **kwargs
    )
    assert response.status_code == status, response.get_data(as_text=True)
    problem = response.get_json()
    assert set(problem) == {"type", "title", "status", "detail"} and problem["status"] == status
