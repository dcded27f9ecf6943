"""What fits: priority order, pools (with pool_slots), max_active_tasks, parallelism."""

from __future__ import annotations

from policy_dags import utc

from cluster.policy import DagLoad, PoolSnapshot, QueueCandidate, select_to_queue


def cand(
    task_id: str,
    weight: int = 1,
    *,
    dag_id: str = "d",
    day: int = 1,
    pool: str = "default_pool",
    slots: int = 1,
) -> QueueCandidate:
    return QueueCandidate(
        dag_id=dag_id,
        run_id=f"r{day}",
        task_id=task_id,
        logical_date=utc(2024, 1, day),
        priority_weight=weight,
        pool=pool,
        pool_slots=slots,
    )


POOLS = {"default_pool": PoolSnapshot("default_pool", 128)}


def ids(decision: object) -> list[str]:
    return [c.task_id for c in decision.to_queue]  # type: ignore[attr-defined]


def test_higher_weight_then_older_logical_date_then_task_id() -> None:
    candidates = [
        cand("z", 1, day=1),
        cand("b", 5, day=2),
        cand("a", 5, day=2),
        cand("c", 5, day=1),
    ]
    decision = select_to_queue(candidates, pools=POOLS, dag_loads={}, free_executor_slots=10)
    assert ids(decision) == ["c", "a", "b", "z"]


def test_parallelism_caps_the_number_queued() -> None:
    candidates = [cand(t) for t in "abc"]
    assert ids(select_to_queue(candidates, pools=POOLS, dag_loads={}, free_executor_slots=2)) == [
        "a",
        "b",
    ]
    assert ids(select_to_queue(candidates, pools=POOLS, dag_loads={}, free_executor_slots=0)) == []


def test_pool_slots_are_counted_and_smaller_tasks_fill_the_rest() -> None:
    pools = {"db": PoolSnapshot("db", 4, occupied=1)}
    candidates = [
        cand("big", 9, pool="db", slots=2),
        cand("huge", 8, pool="db", slots=3),
        cand("small", 1, pool="db", slots=1),
    ]
    decision = select_to_queue(candidates, pools=pools, dag_loads={}, free_executor_slots=10)
    assert ids(decision) == ["big", "small"]


def test_max_active_tasks_counts_queued_and_running_of_the_dag() -> None:
    loads = {"d": DagLoad(max_active_tasks=3, active=2), "e": DagLoad(max_active_tasks=3)}
    candidates = [cand("a"), cand("b"), cand("x", dag_id="e")]
    decision = select_to_queue(candidates, pools=POOLS, dag_loads=loads, free_executor_slots=10)
    assert ids(decision) == ["a", "x"]


def test_a_task_larger_than_its_pool_is_reported_not_queued() -> None:
    pools = {"tiny": PoolSnapshot("tiny", 1)}
    decision = select_to_queue(
        [cand("a", pool="tiny", slots=2)], pools=pools, dag_loads={}, free_executor_slots=10
    )
    assert decision.to_queue == ()
    [never] = decision.never_fits
    assert "needs 2 slots of pool 'tiny', which has only 1" in never.reason


def test_a_missing_pool_is_reported_and_left_scheduled() -> None:
    decision = select_to_queue(
        [cand("a", pool="gone")], pools=POOLS, dag_loads={}, free_executor_slots=10
    )
    assert decision.to_queue == () and decision.missing_pool[0].candidate.task_id == "a"


def test_an_unlimited_pool_never_runs_out() -> None:
    pools = {"open": PoolSnapshot("open", -1, occupied=1000)}
    candidates = [cand(t, pool="open", slots=50) for t in "abc"]
    decision = select_to_queue(candidates, pools=pools, dag_loads={}, free_executor_slots=10)
    assert ids(decision) == ["a", "b", "c"]


def test_max_to_queue_caps_one_loop() -> None:
    decision = select_to_queue(
        [cand(t) for t in "abc"], pools=POOLS, dag_loads={}, free_executor_slots=10, max_to_queue=1
    )
    assert ids(decision) == ["a"]
