"""Which published messages the broker's confirms cover (no broker: the bookkeeping only)."""

from __future__ import annotations

from cluster.executors.celery_publisher import ConfirmsPending


def published(count: int) -> ConfirmsPending:
    pending = ConfirmsPending()
    tags = [pending.published() for _ in range(count)]
    assert tags == list(range(1, count + 1))  # RabbitMQ numbers a channel's messages from 1
    return pending


def test_a_single_ack_confirms_its_own_message_only() -> None:
    pending = published(3)
    pending.acked(2, multiple=False)
    assert pending.waiting == {1, 3}
    assert pending.refused == set()


def test_a_multiple_ack_confirms_every_message_up_to_its_tag() -> None:
    pending = published(5)
    pending.acked(3, multiple=True)
    assert pending.waiting == {4, 5}
    pending.acked(5, multiple=True)
    assert pending.waiting == set()


def test_a_nack_marks_its_messages_refused_and_no_longer_waited_for() -> None:
    pending = published(4)
    pending.acked(1, multiple=False)
    pending.nacked(3, multiple=True)
    assert pending.waiting == {4}
    assert pending.refused == {2, 3}
    pending.nacked(4, multiple=False)
    assert pending.refused == {2, 3, 4}


def test_an_answer_for_a_tag_already_settled_changes_nothing() -> None:
    pending = published(2)
    pending.acked(1, multiple=False)
    pending.nacked(1, multiple=False)
    assert pending.waiting == {2}
    assert pending.refused == set()
