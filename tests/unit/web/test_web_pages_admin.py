"""Browse (SLA misses too), admin and cluster pages: who sees them, what they show, what they never show."""

from __future__ import annotations

from datetime import UTC, datetime

from flask.testing import FlaskClient
from web_harness import T0, Browser, seed_history

from cluster.config import Settings
from cluster.metastore import connections, pools, users, variables
from cluster.metastore.engine import SessionFactory
from cluster.metastore.models import Component, SlaMiss, TaskInstance, Variable
from cluster.metastore.secrets import make_fernet
from cluster.scheduler.fencing import Fence


def test_browse_runs_and_task_instances_filter_by_dag_and_state(
    client: FlaskClient,
    tokens: dict[str, str],
    seeded: None,
    factory: SessionFactory,
    web_settings: Settings,
) -> None:
    with factory.begin() as session:
        seed_history(session, web_settings)
    viewer = Browser(client, tokens["Viewer"])
    runs = viewer.page("/dagruns?state=running")
    assert ">run2</a>" in runs and ">run1</a>" not in runs
    assert ">run1</a>" in viewer.page("/dagruns?dag_id=etl")
    assert "No runs match." in viewer.page("/dagruns?dag_id=other")
    failed = viewer.page("/taskinstances?state=failed")
    assert ">transform</a>" in failed and ">extract</a>" not in failed
    every = viewer.page("/taskinstances?dag_id=etl")
    assert every.count('href="/dags/etl/runs/') >= 4


def test_browse_lists_page_without_counting(
    client: FlaskClient, tokens: dict[str, str], seeded: None, factory: SessionFactory
) -> None:
    with factory.begin() as session:
        for i in range(60):
            session.add(
                TaskInstance(dag_id="etl", run_id="run1", task_id=f"t{i:02d}", state="none")
            )
    viewer = Browser(client, tokens["Viewer"])
    first = viewer.page("/taskinstances?dag_id=etl")
    assert "Older →" in first and "← Newer" not in first
    second = viewer.page("/taskinstances?dag_id=etl&page=2")
    assert "← Newer" in second and "Older →" not in second
    assert second.count('class="state state-') == 63 - 50


def test_the_audit_log_is_for_admin_and_shows_web_actions(
    client: FlaskClient, tokens: dict[str, str], seeded: None
) -> None:
    """Airflow's default roles give ``can_read`` on ``Audit Logs`` to Admin only."""
    Browser(client, tokens["User"]).post("/dags/etl/pause", {"paused": "false"})
    assert Browser(client, tokens["Op"]).get("/auditlog").status_code == 403
    html = Browser(client, tokens["Admin"]).page("/auditlog?dag_id=etl")
    assert "web.dags.unpause" in html and ">user<" in html


def test_import_errors_show_their_stack_traces(
    client: FlaskClient, tokens: dict[str, str], seeded: None, factory: SessionFactory
) -> None:
    html = Browser(client, tokens["Viewer"]).page("/importerrors")
    assert "/dags/bad.py" in html and "SyntaxError" in html


def test_variables_list_keys_only_and_store_values_encrypted(
    client: FlaskClient,
    tokens: dict[str, str],
    seeded: None,
    factory: SessionFactory,
    web_settings: Settings,
) -> None:
    op = Browser(client, tokens["Op"])
    listing = op.page("/variables")
    assert "greeting" in listing and "hello" not in listing
    assert "hello" in op.page("/variables/greeting/edit")
    assert Browser(client, tokens["User"]).get("/variables").status_code == 403
    assert (
        op.post("/variables/new", {"key": "api_key", "value": "xyzzy"}, csrf=False).status_code
        == 400
    )
    assert op.post("/variables/new", {"key": "api_key", "value": "xyzzy"}).status_code == 302
    fernet = make_fernet(web_settings.core.fernet_key)
    with factory() as session:
        row = session.get(Variable, "api_key")
        assert row is not None and row.is_encrypted and "xyzzy" not in (row.val or "")
        assert variables.get_variable("api_key", session=session, fernet=fernet) == "xyzzy"
    op.post("/variables/api_key/edit", {"value": "plugh", "description": "the key"})
    op.post("/variables/greeting/delete")
    with factory() as session:
        assert variables.get_variable("api_key", session=session, fernet=fernet) == "plugh"
        assert [v.key for v in variables.list_variables(session=session)] == ["api_key"]


def test_connections_never_echo_the_password(
    client: FlaskClient,
    tokens: dict[str, str],
    seeded: None,
    factory: SessionFactory,
    web_settings: Settings,
) -> None:
    op = Browser(client, tokens["Op"])
    assert "s3cret" not in op.page("/connections") and "mysql" in op.page("/connections")
    edit = op.page("/connections/db/edit")
    assert "s3cret" not in edit and 'value="h"' in edit
    assert op.post("/connections/db/edit", {"conn_type": "mysql", "host": "db1"}).status_code == 302
    fernet = make_fernet(web_settings.core.fernet_key)
    with factory() as session:
        kept = connections.get_connection("db", session=session, fernet=fernet)
    assert kept.host == "db1" and kept.password == "s3cret", "a blank password keeps the stored one"
    bad = op.post("/connections/new", {"conn_id": "api", "conn_type": "http", "port": "eighty"})
    assert bad.status_code == 400 and "port must be a number" in bad.get_data(as_text=True)
    op.post(
        "/connections/new", {"conn_id": "api", "conn_type": "http", "password": "pw", "port": "80"}
    )
    with factory() as session:
        created = connections.get_connection("api", session=session, fernet=fernet)
    assert created.password == "pw" and created.port == 80


def test_pools_show_occupied_slots_and_keep_the_default_pool(
    client: FlaskClient, tokens: dict[str, str], seeded: None, factory: SessionFactory
) -> None:
    with factory.begin() as session:
        session.add(
            TaskInstance(
                dag_id="etl",
                run_id="run1",
                task_id="busy",
                state="running",
                pool="etl_pool",
                pool_slots=3,
            )
        )
    op = Browser(client, tokens["Op"])
    html = op.page("/pools")
    assert 'data-pool="etl_pool"' in html and '<td class="occupied">3</td>' in html
    assert "/pools/default_pool/delete" not in html
    op.post("/pools/default_pool/delete")
    assert "cannot be deleted" in op.page("/pools")
    assert op.post("/pools/new", {"pool": "gpu", "slots": "2"}).status_code == 302
    assert op.post("/pools/new", {"pool": "gpu", "slots": "2"}).status_code == 400
    op.post("/pools/etl_pool/edit", {"slots": "8", "description": "more"})
    op.post("/pools/gpu/delete")
    with factory() as session:
        names = {p.pool: p.slots for p in pools.list_pools(session=session)}
    assert names == {"default_pool": 128, "etl_pool": 8}


def test_users_are_managed_by_admins_only(
    client: FlaskClient, tokens: dict[str, str], seeded: None, factory: SessionFactory
) -> None:
    assert Browser(client, tokens["Op"]).get("/users").status_code == 403
    admin = Browser(client, tokens["Admin"])
    listing = admin.page("/users")
    assert 'data-username="viewer"' in listing and "Admin (you)" in listing
    assert "password" not in listing.lower().replace('type="password"', "")
    created = admin.post("/users/new", {"username": "dana", "password": "pw-dana-1", "role": "Op"})
    assert created.status_code == 302
    assert admin.post("/users/dana/role", {"role": "User"}, csrf=False).status_code == 400
    admin.post("/users/dana/role", {"role": "User"})
    admin.post("/users/viewer/delete")
    assert admin.post("/users/admin/delete").status_code == 400, "not your own account"
    with factory() as session:
        roles = {u.username: u.role for u in users.list_users(session=session)}
    assert roles == {
        "admin": "Admin",
        "dana": "User",
        "op": "Op",
        "user": "User",
        "public": "Public",
    }


def test_the_cluster_page_shows_the_leader_and_the_processes(
    client: FlaskClient,
    tokens: dict[str, str],
    seeded: None,
    factory: SessionFactory,
    web_settings: Settings,
) -> None:
    assert "No scheduler has taken the lead yet." in Browser(client, tokens["Viewer"]).page(
        "/cluster"
    )
    with factory.begin() as session:
        seed_history(session, web_settings)
    html = Browser(client, tokens["Viewer"]).page("/cluster")
    assert "master1" in html and "4242" in html and "<td>7</td>" in html
    assert "worker-9" in html and "master2" in html and "(stale)" in html
    assert "No broker configured" in html


def test_the_cluster_page_lists_past_leaders_and_any_kind_of_component(
    client: FlaskClient, tokens: dict[str, str], seeded: None, factory: SessionFactory
) -> None:
    with factory.begin() as session:
        for host in ("master1", "master2"):
            Fence(host=host, pid=100).acquire(session, now=T0)
        # a kind this page has never heard of is listed all the same
        session.add(
            Component(kind="triggerer", host="master3", pid=31, started_at=T0, heartbeat_at=T0)
        )
    html = Browser(client, tokens["Viewer"]).page("/cluster")
    history = html[html.index("Leader history") : html.index("<h2>Schedulers</h2>")]
    assert history.index("<td>2</td><td>master2</td>") < history.index("<td>1</td><td>master1</td>")
    assert html.index("<h2>Workers</h2>") < html.index("<h2>Triggerers</h2>")
    assert 'data-kind="triggerer"' in html and "master3" in html
    assert 'class="age" data-age=' in html and "ages.js" in html


def test_the_cluster_page_shows_each_triggerers_load(
    client: FlaskClient, tokens: dict[str, str], seeded: None, factory: SessionFactory
) -> None:
    with factory.begin() as session:
        moment = datetime.now(UTC)
        extra = {"triggers": 12, "capacity": 1000}
        session.add(
            Component(
                kind="triggerer",
                host="master3",
                pid=31,
                started_at=moment,
                heartbeat_at=moment,
                extra=extra,
            )
        )
    html = Browser(client, tokens["Viewer"]).page("/cluster")
    assert "<h2>Triggerers</h2>" in html
    assert "master3" in html and '<td class="triggers">12 / 1000</td>' in html


def test_nothing_secret_reaches_a_viewer(
    client: FlaskClient, tokens: dict[str, str], seeded: None
) -> None:
    viewer = Browser(client, tokens["Viewer"])
    for path in ("/variables", "/connections/db/edit", "/users"):
        assert viewer.get(path).status_code == 403
    assert viewer.get("/pools").status_code == 200, "Airflow's Viewer reads pools"
    home = viewer.page("/")
    assert "Variables" not in home and "Audit log" not in home


def test_sla_misses_are_listed_for_viewers_and_filter_by_dag(
    client: FlaskClient, tokens: dict[str, str], factory: SessionFactory
) -> None:
    late = datetime(2026, 11, 2, tzinfo=UTC)
    with factory.begin() as session:
        session.add(SlaMiss(dag_id="etl", task_id="load", execution_date=late, timestamp=late,
                            email_sent=True, notification_sent=False))  # fmt: skip
        session.add(SlaMiss(dag_id="other", task_id="sum", execution_date=late, timestamp=late))
    viewer = Browser(client, tokens["Viewer"])
    assert 'href="/slamisses"' in viewer.page("/")
    html = viewer.page("/slamisses?dag_id=etl")
    assert "load" in html and "sum" not in html
    assert "<td>yes</td><td>no</td>" in html
    assert "No task missed its SLA in nobody" in viewer.page("/slamisses?dag_id=nobody")
