"""What the Celery app of a ``tradewind worker`` turns on and off (built, never started)."""

from __future__ import annotations

from cluster.config import Settings
from cluster.executors.celery_app import build_celery_app


def test_a_worker_takes_one_message_per_thread_and_acknowledges_it_late(
    settings: Settings,
) -> None:
    conf = build_celery_app(settings.replace("celery", broker_urls=["amqp://h1//"])).conf
    assert conf.worker_prefetch_multiplier == 1
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.task_ignore_result is True


def test_the_worker_features_tradewind_does_not_use_are_off(settings: Settings) -> None:
    conf = build_celery_app(settings.replace("celery", broker_urls=["amqp://h1//"])).conf
    assert conf.worker_send_task_events is False
    assert conf.task_send_sent_event is False
    assert conf.worker_enable_remote_control is False
    assert conf.worker_disable_rate_limits is True
