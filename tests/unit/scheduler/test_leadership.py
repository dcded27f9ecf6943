"""Leadership over the fencing epoch, the takeover re-send and the scheduler's metrics.

The elector here is a switch of our own (the real ZooKeeper election is tested against
a real ensemble in tests/cluster); the metastore is a real SQLite file.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from prometheus_client import generate_latest
from sqlalchemy import insert, select
from sqlalchemy.orm import Session, sessionmaker

from cluster.errors import FencedOff
from cluster.metastore.engine import transaction
from cluster.metastore.models import DagRun, SchedulerLease, TaskInstance
from cluster.metrics.scheduler import SchedulerMetrics
from cluster.scheduler.dagcache import DagCache
from cluster.scheduler.fencing import Fence
from cluster.scheduler.leadership import Leadership
from cluster.scheduler.observer import SchedulerObserver
from cluster.scheduler.takeover import orphaned_dispatches

NOW = datetime(2024, 5, 1, 12, tzinfo=UTC)


class Switch:
    """An elector whose holding the test sets by hand."""

    def __init__(self) -> None:
        self.holding = False
        self.resigned = 0
        self.stopped = False

    def start(self, on_change: Callable[[], None]) -> None:
        on_change()

    def holds(self) -> bool:
        return self.holding

    def resign(self) -> None:
        self.resigned += 1
        self.holding = False

    def stop(self) -> None:
        self.stopped = True
        self.holding = False


def leadership(
    sessions: sessionmaker[Session], host: str, events: list[Any] | None = None
) -> tuple[Leadership, Switch]:
    switch = Switch()
    seen = events if events is not None else []
    return (
        Leadership(
            switch,
            Fence(host=host, pid=1),
            sessions=sessions,
            clock=lambda: NOW,
            on_elected=lambda epoch: seen.append(("elected", host, epoch)),
            on_deposed=lambda reason: seen.append(("deposed", host, reason)),
        ),
        switch,
    )


def test_holding_the_election_takes_a_new_epoch(session_factory: sessionmaker[Session]) -> None:
    events: list[Any] = []
    first, switch_a = leadership(session_factory, "a", events)
    second, switch_b = leadership(session_factory, "b", events)
    assert not first.is_leader() and first.role == "standby"

    switch_a.holding = True
    assert first.is_leader() and first.role == "leader"
    switch_a.holding, switch_b.holding = False, True
    assert second.is_leader()
    assert not first.is_leader()
    assert events == [
        ("elected", "a", 1),
        ("elected", "b", 2),
        ("deposed", "a", "lost the election"),
    ]
    with session_factory() as session:
        lease = session.get(SchedulerLease, 1)
        assert lease is not None and (lease.epoch, lease.leader_host) == (2, "b")


def test_a_stale_epoch_is_fenced_off_and_resigns(session_factory: sessionmaker[Session]) -> None:
    old, switch_old = leadership(session_factory, "old")
    new, switch_new = leadership(session_factory, "new")
    switch_old.holding = True
    assert old.is_leader()
    switch_new.holding = True  # e.g. the old one was frozen past its session
    assert new.is_leader()

    with pytest.raises(FencedOff):
        transaction(session_factory, lambda s: old.fence.check(s, now=NOW))
    old.fenced_off("stale epoch")
    assert not old.leading and switch_old.resigned == 1 and old.fence.epoch is None
    assert transaction(session_factory, lambda s: new.fence.check(s, now=NOW)) == 2


def test_release_leaves_the_election(session_factory: sessionmaker[Session]) -> None:
    lead, switch = leadership(session_factory, "a")
    switch.holding = True
    assert lead.is_leader()
    lead.release()
    assert switch.stopped and not lead.leading


def _seed_queued(session: Session, epochs: dict[str, int]) -> None:
    session.execute(
        insert(DagRun).values(
            dag_id="d", run_id="r", run_type="manual", state="running", conf={}, logical_date=NOW
        )
    )
    session.execute(
        insert(TaskInstance),
        [
            {
                "dag_id": "d",
                "run_id": "r",
                "task_id": task_id,
                "state": "queued",
                "try_number": 1,
                "queued_by_epoch": epoch,
                "queue": "heavy",
            }
            for task_id, epoch in epochs.items()
        ],
    )


def test_the_new_leader_resends_only_what_older_epochs_queued(
    session_factory: sessionmaker[Session],
) -> None:
    with session_factory.begin() as session:
        _seed_queued(session, {"old_a": 1, "old_b": 2, "mine": 3})
    with session_factory() as session:
        dispatches = orphaned_dispatches(session, DagCache(), epoch=3)
    sent = sorted((d.message.task_id, d.message.try_number, d.queue) for d in dispatches)
    assert sent == [("old_a", 1, "heavy"), ("old_b", 1, "heavy")]


def test_observer_counts_the_states_of_running_runs(session_factory: sessionmaker[Session]) -> None:
    with session_factory.begin() as session:
        _seed_queued(session, {"a": 1, "b": 1})
        session.execute(
            insert(DagRun).values(
                dag_id="d",
                run_id="done",
                run_type="manual",
                state="success",
                conf={},
                logical_date=datetime(2024, 4, 1, tzinfo=UTC),
            )
        )
        session.execute(
            insert(TaskInstance).values(dag_id="d", run_id="done", task_id="a", state="success")
        )
    ticks = iter([0.0, 0.0, 1.0, 100.0, 100.0])
    observer = SchedulerObserver(
        SchedulerMetrics(),
        sessions=session_factory,
        census_interval=15,
        monotonic=lambda: next(ticks),
    )
    observer.iteration(0.02, leading=True)
    observer.leadership(True)
    text = generate_latest(observer.metrics.registry).decode()
    assert 'tradewind_task_instances{state="queued"} 2.0' in text
    assert 'tradewind_task_instances{state="success"} 0.0' in text  # finished runs not counted
    assert "tradewind_queued_tasks 2.0" in text
    assert "tradewind_scheduler_is_leader 1.0" in text
    assert "tradewind_scheduler_loop_duration_seconds_count 1.0" in text

    with session_factory.begin() as session:
        session.execute(
            insert(TaskInstance).values(dag_id="d", run_id="r", task_id="c", state="queued")
        )
    observer.iteration(0.02, leading=True)  # within the census interval: not counted again
    assert "tradewind_queued_tasks 2.0" in generate_latest(observer.metrics.registry).decode()
    observer.iteration(0.02, leading=True)
    assert "tradewind_queued_tasks 3.0" in generate_latest(observer.metrics.registry).decode()
    with session_factory() as session:
        assert len(session.scalars(select(TaskInstance)).all()) == 4
