"""Helpers of the web tests: users' tokens, an API client per role, a small seeded world."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
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
    Component,
    Dag,
    DagCode,
    DagRun,
    ImportErrorRow,
    SchedulerLease,
    SerializedDagRow,
    TaskInstance,
    TaskInstanceHistory,
    XCom,
)
from cluster.metastore.secrets import make_fernet
from cluster.web import create_app
from cluster.web.context import EXTENSION, WebContext

ROLES = ("Admin", "Op", "User", "Viewer", "Public")
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


@dataclass(frozen=True)
class Browser:
    """A client for the HTML pages as one role: its token, and the session's CSRF token.

    Forms need the CSRF token of the session cookie whatever signs the user in, so
    :meth:`post` puts one in the cookie and the form (``csrf=False`` leaves it out).
    """

    client: FlaskClient
    token: str

    def get(self, path: str, **kwargs: Any) -> TestResponse:
        return self.client.get(path, headers=bearer(self.token), **kwargs)

    def page(self, path: str) -> str:
        """The HTML of a page that must answer 200."""
        response = self.get(path)
        assert response.status_code == 200, (path, response.status_code, response.data[:500])
        return response.get_data(as_text=True)

    def csrf(self) -> str:
        with self.client.session_transaction() as session:
            token = session.get("csrf_token")
            if not isinstance(token, str):
                token = secrets.token_urlsafe(16)
                session["csrf_token"] = token
        return token

    def post(
        self, path: str, data: dict[str, str] | None = None, *, csrf: bool = True
    ) -> TestResponse:
        form = dict(data or {})
        if csrf:
            form["csrf_token"] = self.csrf()
        return self.client.post(path, data=form, headers=bearer(self.token))


def chain_dag(dag_id: str, size: int, *, fan: int = 3) -> SerializedDag:
    """A generated DAG of ``size`` tasks: each task feeds the next ``fan`` ones (some skip layers)."""
    ids = [f"task_{i:03d}" for i in range(size)]
    downs: dict[str, list[str]] = {t: [] for t in ids}
    for i, task_id in enumerate(ids):
        for step in range(1, fan + 1):
            j = i * 2 + step
            if j < size:
                downs[task_id].append(ids[j])
    ups: dict[str, list[str]] = {t: [] for t in ids}
    for up, targets in downs.items():
        for down in targets:
            ups[down].append(up)
    tasks = {
        t: SerializedTask(
            task_id=t,
            operator="EmptyOperator",
            upstream_task_ids=tuple(ups[t]),
            downstream_task_ids=tuple(downs[t]),
        )
        for t in ids
    }
    return SerializedDag(
        dag_id=dag_id,
        fileloc=f"/dags/{dag_id}.py",
        timetable={"type": "null"},
        schedule=None,
        tasks=tasks,
    )


def seed_history(session: Session, settings: Settings) -> None:
    """Extra world for the page tests: tries, a running try with a local log, code, cluster rows.

    ``etl``/``run1``/``transform`` failed its first try on ``worker-9`` (history) and its
    second on this host (current row, with a log file); ``etl``/``run2`` is running, its
    ``extract`` writing a log on this host.
    """
    here = settings.core.hostname
    transform = session.get(TaskInstance, ("etl", "run1", "transform", -1))
    assert transform is not None
    transform.try_number, transform.hostname = 2, here
    transform.rendered_fields = {"bash_command": "echo rows=10"}
    session.add(
        TaskInstanceHistory(
            dag_id="etl",
            run_id="run1",
            task_id="transform",
            try_number=1,
            state="failed",
            hostname="worker-9",
            start_date=T0,
            end_date=T0,
        )
    )
    extract = session.get(TaskInstance, ("etl", "run1", "extract", -1))
    assert extract is not None
    extract.hostname = "worker-9"
    session.add(
        DagRun(
            dag_id="etl",
            run_id="run2",
            logical_date=T0.replace(day=2),
            run_type="manual",
            state="running",
            conf={"rows": 3},
            queued_at=T0,
        )
    )
    session.flush()
    session.add(
        TaskInstance(
            dag_id="etl",
            run_id="run2",
            task_id="extract",
            state="running",
            try_number=1,
            hostname=here,
        )
    )
    session.add(
        DagCode(
            fileloc_hash=hashlib.sha256(b"/dags/etl.py").hexdigest(),
            fileloc="/dags/etl.py",
            fingerprint="f",
            source_code="with DAG('etl') as dag:\n    extract >> transform\n",
        )
    )
    session.add(
        SchedulerLease(
            id=1, epoch=7, leader_host="master1", leader_pid=4242, acquired_at=T0, heartbeat_at=T0
        )
    )
    session.add(Component(kind="worker", host="worker-9", pid=99, started_at=T0, heartbeat_at=T0))
    session.add(Component(kind="scheduler", host="master2", pid=17, started_at=T0, heartbeat_at=T0))
    logs = settings.logging.base_log_folder
    write_log(logs, "etl", "run1", "transform", 2, "transform try 2: KeyError 'rows'\n")
    write_log(logs, "etl", "run2", "extract", 1, "extracting… rows 1-100\n")


def write_log(base: Path, dag_id: str, run_id: str, task_id: str, attempt: int, text: str) -> Path:
    path = base / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
    path.mkdir(parents=True, exist_ok=True)
    path /= f"attempt={attempt}.log"
    path.write_text(text, encoding="utf-8")
    return path
