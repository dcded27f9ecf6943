"""What ``tradewind broker setup`` declares is what the Celery app and the reference
definitions declare: a disagreement would make RabbitMQ refuse one of them."""

from __future__ import annotations

import json
from pathlib import Path

from cluster.config import Settings
from cluster.deploy.management import derive_management_urls, safe_url
from cluster.deploy.rabbitmq import POLICY, POLICY_NAME, QUEUE_ARGUMENTS, task_queue_names
from cluster.executors.celery_app import build_celery_app

DEFINITIONS = Path(__file__).resolve().parents[3] / "configs" / "rabbitmq" / "definitions.json"


def test_task_queues_match_the_celery_apps(settings: Settings) -> None:
    settings = settings.replace(
        "celery", broker_urls=["amqp://u:p@h:5672/v"], queues=["default", "heavy", "default"]
    )
    app = build_celery_app(settings)
    declared = {queue.name: queue for queue in app.conf.task_queues}
    assert list(declared) == task_queue_names(settings.celery) == ["default", "heavy"]
    for name, queue in declared.items():
        assert queue.queue_arguments == QUEUE_ARGUMENTS
        assert queue.durable and queue.routing_key == name
        assert (queue.exchange.name, queue.exchange.type, queue.exchange.durable) == (
            name,
            "direct",
            True,
        )


def test_the_policy_and_exchange_match_the_reference_definitions(settings: Settings) -> None:
    definitions = json.loads(DEFINITIONS.read_text())
    (policy,) = [p for p in definitions["policies"] if p["name"] == POLICY_NAME]
    assert {key: policy[key] for key in POLICY} == POLICY
    exchanges = {e["name"]: e for e in definitions["exchanges"]}
    events = exchanges[settings.celery.events_exchange]
    assert (events["type"], events["durable"]) == ("fanout", True)
    (user,) = definitions["users"]
    assert {"monitoring", "policymaker"} <= set(user["tags"])


def test_management_urls_are_derived_from_broker_urls_without_leaking_passwords() -> None:
    derived = derive_management_urls(["amqp://tw:s3cret@infra1:5672/tradewind", "amqp://infra2"])
    assert derived == ["http://tw:s3cret@infra1:15672", "http://infra2:15672"]
    assert safe_url(derived[0]) == "http://infra1:15672"
