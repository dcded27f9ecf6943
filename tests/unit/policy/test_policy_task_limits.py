"""A task's ``max_active_tis_per_dag`` and ``max_active_tis_per_dagrun`` (Airflow 2.10's
``_executable_task_instances_to_queued``): queued + running instances count, each mapped
instance counts as one, and those queued in the same pass count too."""

from __future__ import annotations

from policy_dags import utc

from cluster.policy import FitDecision, PoolSnapshot, QueueCandidate, TaskLoads, select_to_queue

POOLS = {"default_pool": PoolSnapshot("default_pool", 128)}


def mapped(
    task_id: str,
    count: int,
    *,
    run: int = 1,
    per_dag: int | None = None,
    per_run: int | None = None,
    weight: int = 1,
) -> list[QueueCandidate]:
    """``count`` mapped instances of ``task_id`` in run ``r{run}``."""
    return [
        QueueCandidate(
            dag_id="d",
            run_id=f"r{run}",
            task_id=task_id,
            logical_date=utc(2024, 1, run),
            priority_weight=weight,
            map_index=i,
            max_active_tis_per_dag=per_dag,
            max_active_tis_per_dagrun=per_run,
        )
        for i in range(count)
    ]


def queue(candidates: list[QueueCandidate], loads: TaskLoads | None = None) -> FitDecision:
    return select_to_queue(
        candidates, pools=POOLS, dag_loads={}, free_executor_slots=100, task_loads=loads
    )


def keys(decision: FitDecision) -> list[tuple[str, str, int]]:
    return [(c.run_id, c.task_id, c.map_index) for c in decision.to_queue]


def test_no_limit_queues_every_instance_as_before() -> None:
    candidates = mapped("m", 5) + mapped("m", 5, run=2)
    assert len(queue(candidates).to_queue) == 10
    busy = TaskLoads(per_dag={("d", "m"): 50}, per_run={("d", "r1", "m"): 50})
    assert len(queue(candidates, busy).to_queue) == 10


def test_per_dag_limit_counts_instances_queued_in_the_same_pass_across_runs() -> None:
    candidates = mapped("m", 3, per_dag=2) + mapped("m", 3, run=2, per_dag=2)
    assert keys(queue(candidates)) == [("r1", "m", 0), ("r1", "m", 1)]


def test_per_dag_limit_counts_active_instances_of_every_run() -> None:
    candidates = mapped("m", 3, run=2, per_dag=3)
    loads = TaskLoads(per_dag={("d", "m"): 2}, per_run={("d", "r1", "m"): 2})
    assert keys(queue(candidates, loads)) == [("r2", "m", 0)]
    full = TaskLoads(per_dag={("d", "m"): 3}, per_run={("d", "r1", "m"): 3})
    assert queue(candidates, full).to_queue == ()


def test_per_run_limit_is_per_run() -> None:
    candidates = mapped("m", 3, per_run=2) + mapped("m", 3, run=2, per_run=2)
    loads = TaskLoads(per_dag={("d", "m"): 1}, per_run={("d", "r2", "m"): 1})
    assert keys(queue(candidates, loads)) == [("r1", "m", 0), ("r1", "m", 1), ("r2", "m", 0)]


def test_both_limits_apply_the_tighter_wins() -> None:
    candidates = mapped("m", 4, per_dag=3, per_run=1) + mapped("m", 4, run=2, per_dag=3, per_run=1)
    assert keys(queue(candidates)) == [("r1", "m", 0), ("r2", "m", 0)]
    candidates = mapped("m", 4, per_dag=1, per_run=3)
    assert keys(queue(candidates)) == [("r1", "m", 0)]


def test_a_capped_task_does_not_block_other_tasks_below_it() -> None:
    candidates = mapped("capped", 5, per_dag=1, weight=10) + mapped("free", 2)
    assert keys(queue(candidates)) == [("r1", "capped", 0), ("r1", "free", 0), ("r1", "free", 1)]


def test_other_tasks_instances_do_not_count_against_the_limit() -> None:
    loads = TaskLoads(per_dag={("d", "other"): 9}, per_run={("d", "r1", "other"): 9})
    assert len(queue(mapped("m", 3, per_dag=2, per_run=2), loads).to_queue) == 2


def test_a_limit_of_zero_queues_nothing_of_that_task() -> None:
    assert queue(mapped("m", 3, per_dag=0)).to_queue == ()
