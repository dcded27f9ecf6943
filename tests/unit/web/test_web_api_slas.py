"""``/api/v1/slaMisses`` (Tradewind's path; Airflow's v1 API has none): the recorded SLA
misses with Airflow's ``sla_miss`` fields, filtered by DAG, paged, for viewers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cluster.metastore.engine import SessionFactory
from cluster.metastore.slas import record_misses
from tests.unit.web.web_harness import Api

DAY = datetime(2026, 1, 1, tzinfo=UTC)


def test_sla_misses_are_listed_newest_first(admin: Api, factory: SessionFactory) -> None:
    with factory.begin() as session:
        record_misses(session, "daily", [("a", DAY), ("a", DAY + timedelta(days=1))], now=DAY)
        record_misses(session, "other", [("b", DAY)], now=DAY)
    body = admin.get("/api/v1/slaMisses?dag_id=daily").get_json()
    assert body["total_entries"] == 2
    assert [m["execution_date"] for m in body["sla_misses"]] == [
        "2026-01-02T00:00:00Z",
        "2026-01-01T00:00:00Z",
    ]
    first = body["sla_misses"][0]
    assert (first["dag_id"], first["task_id"], first["notification_sent"]) == ("daily", "a", False)
    paged = admin.get("/api/v1/slaMisses?limit=1&offset=2").get_json()
    assert paged["total_entries"] == 3 and len(paged["sla_misses"]) == 1
