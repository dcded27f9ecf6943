"""Helpers of the web tests: users' tokens, an API client per role, a small seeded world."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from cluster.config import Settings
from cluster.dagfiles.serialized import SerializedDag, SerializedTask
from cluster.metastore import connections, pools, variables
from cluster.metastore.migrate import migrate
from cluster.metastore.models import (
    Dag,
    DagRun,
    ImportErrorRow,
    SerializedDagRow,
    TaskInstance,
    XCom,
)
from cluster.metastore.secrets import make_fernet
from cluster.web import create_app
from cluster.web.context import EXTENSION, WebContext

ROLES = ("Admin", "Op", "User", "Viewer")
PASSWORD = "correct horse battery staple"
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def build_app(settings: Settings) -> Flask:
    app = create_app(settings)
    migrate(context_of(app).engine)
    return app


def context_of(app: Flask) -> WebContext:
    context: WebContext = app.extensions[EXTENSION]
    return context


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass(frozen=True)
class Api:
    """A test client that sends one role's token with every request."""

    client: FlaskClient
    token: str

    def get(self, path: str, **kwargs: Any) -> TestResponse:
        return self.client.get(path, headers=bearer(self.token), **kwargs)

    def post(self, path: str, json: Any = None, **kwargs: Any) -> TestResponse:
        return self.client.post(path, json=json, headers=bearer(self.token), **kwargs)

    def patch(self, path: str, json: Any = None, **kwargs: Any) -> TestResponse:
        return self.client.patch(path, json=json, headers=bearer(self.token), **kwargs)

    def delete(self, path: str, **kwargs: Any) -> TestResponse:
        return self.client.delete(path, headers=bearer(self.token), **kwargs)


def etl_dag() -> SerializedDag:
    edges = {"extract": ("transform",), "transform": ("load",), "load": ()}
    tasks = {
        task_id: SerializedTask(
            task_id=task_id,
            operator="PythonOperator",
            upstream_task_ids=tuple(u for u, downs in edges.items() if task_id in downs),
            downstream_task_ids=downs,
            retries=1,
        )
        for task_id, downs in edges.items()
    }
    return SerializedDag(
        dag_id="etl",
        fileloc="/dags/etl.py",
        timetable={"type": "null"},
        schedule=None,
        tags=("finance",),
        params={"rows": {"type": "integer", "minimum": 0, "default": 10}},
        tasks=tasks,
    )


def seed(session: Session, settings: Settings) -> None:
    dag = etl_dag()
    session.add(
        Dag(dag_id="etl", fileloc=dag.fileloc, is_paused=True, tags=["finance"], owners="ops")
    )
    session.add(Dag(dag_id="other", fileloc="/dags/other.py", is_paused=False, tags=["misc"]))
    session.add(
        SerializedDagRow(
            dag_id="etl", fileloc=dag.fileloc, data=dag.to_json(), fingerprint=dag.fingerprint()
        )
    )
    session.add(
        DagRun(
            dag_id="etl",
            run_id="run1",
            logical_date=T0,
            run_type="manual",
            state="failed",
            conf={},
            queued_at=T0,
        )
    )
    session.flush()
    states = {"extract": "success", "transform": "failed", "load": "upstream_failed"}
    for task_id, state in states.items():
        session.add(
            TaskInstance(dag_id="etl", run_id="run1", task_id=task_id, state=state, try_number=1)
        )
    session.flush()
    session.add(
        XCom(dag_id="etl", run_id="run1", task_id="extract", key="return_value", value="[1, 2]")
    )
    session.add(ImportErrorRow(filename="/dags/bad.py", filename_hash="h", message="SyntaxError"))
    fernet = make_fernet(settings.core.fernet_key)
    variables.set_variable("greeting", "hello", session=session, fernet=fernet)
    connections.add_connection(
        connections.ConnectionRecord("db", "mysql", host="h", password="s3cret"),
        session=session,
        fernet=fernet,
    )
    pools.set_pool("default_pool", 128, session=session)
    pools.set_pool("etl_pool", 4, session=session, description="ETL slots")
