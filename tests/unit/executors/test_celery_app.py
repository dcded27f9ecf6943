"""What the Celery app of a ``tradewind worker`` turns on and off (built, never started)."""

from __future__ import annotations

from celery import Celery

from cluster.config import Settings
from cluster.executors import celery_app
from cluster.executors.celery_app import build_celery_app, settings_app


def test_a_worker_takes_one_message_per_thread_and_acknowledges_it_late(
    settings: Settings,
) -> None:
    conf = build_celery_app(settings.replace("celery", broker_urls=["amqp://h1//"])).conf
    assert conf.worker_prefetch_multiplier == 1
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.task_ignore_result is True


def test_rate_limits_and_events_are_off_at_start(settings: Settings) -> None:
    """Task events cost every try; Flower turns them on over remote control when it runs."""
    conf = build_celery_app(settings.replace("celery", broker_urls=["amqp://h1//"])).conf
    assert conf.task_send_sent_event is False
    assert conf.worker_send_task_events is False
    assert conf.worker_disable_rate_limits is True


def test_remote_control_follows_the_setting(settings: Settings) -> None:
    """On by default, so ``celery inspect`` and Flower see the workers; off on demand."""
    on = build_celery_app(settings.replace("celery", broker_urls=["amqp://h1//"])).conf
    assert on.worker_enable_remote_control is True
    # a worker that reconnects to another broker node must not find its own pidbox locked
    assert on.control_queue_exclusive is False and on.control_queue_durable is False
    off_settings = settings.replace(
        "celery", broker_urls=["amqp://h1//"], worker_remote_control=False
    )
    assert build_celery_app(off_settings).conf.worker_enable_remote_control is False


def test_the_importable_app_reads_the_settings_only_when_first_configured(
    settings: Settings,
) -> None:
    """``celery -A cluster.executors.celery_app`` finds ``app``; importing it loads nothing."""
    loads: list[Settings] = []

    def load() -> Settings:
        loads.append(settings.replace("celery", broker_urls=["amqp://h1//", "amqp://h2//"]))
        return loads[-1]

    lazy = settings_app(load)
    assert loads == [] and not lazy.configured
    assert lazy.conf.broker_url == "amqp://h1//;amqp://h2//"
    assert lazy.conf.worker_enable_remote_control is True
    assert len(loads) == 1
    assert isinstance(celery_app.app, Celery) and not celery_app.app.configured
