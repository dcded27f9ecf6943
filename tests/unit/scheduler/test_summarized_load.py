"""The loop reads a mapped run without a row per settled mapped instance (any state the
policy does not decide): those are counted in SQL, and the policy sees the same
instances by task, state and index set."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import insert
from sqlalchemy.orm import Session, sessionmaker

from cluster.dagfiles.serialized import SerializedDag, SerializedTask
from cluster.metastore.models import DagRun, TaskInstance
from cluster.scheduler.dagruns import _load_instances
from cluster.scheduler.expansion import load_summarized

MAPPING = {"kind": "dict-of-lists", "args": {"x": {"type": "xcom", "task_id": "p"}}}


def _dag() -> SerializedDag:
    """``p`` → ``m`` (mapped over ``p``) → ``reduce``; ``g`` is mapped in group ``G``."""
    tasks = {
        "p": SerializedTask(task_id="p", operator="PythonOperator", downstream_task_ids=("m",)),
        "m": SerializedTask(
            task_id="m",
            operator="PythonOperator",
            mapping=MAPPING,
            upstream_task_ids=("p",),
            downstream_task_ids=("reduce",),
        ),
        "reduce": SerializedTask(
            task_id="reduce", operator="PythonOperator", upstream_task_ids=("m",)
        ),
        "G.g": SerializedTask(
            task_id="G.g", operator="PythonOperator", mapping=MAPPING, task_group_id="G"
        ),
    }
    return SerializedDag(
        dag_id="d",
        fileloc="/dags/d.py",
        timetable={},
        schedule=None,
        tasks=tasks,
        task_groups={"G": {"parent": None, "mapping": MAPPING}},
    )


def _seed(factory: sessionmaker[Session], rows: list[tuple[str, int, str]]) -> None:
    with factory.begin() as session:
        session.execute(
            insert(DagRun).values(
                dag_id="d", run_id="r", run_type="manual", state="running", conf={}
            )
        )
        session.execute(
            insert(TaskInstance),
            [
                {"dag_id": "d", "run_id": "r", "task_id": t, "map_index": i, "state": s}
                for t, i, s in rows
            ],
        )


def _by_task(instances: dict) -> dict[str, Counter[str]]:  # type: ignore[type-arg]
    found: dict[str, Counter[str]] = {}
    for instance in instances.values():
        found.setdefault(instance.task_id, Counter())[str(instance.state)] += 1
    return found


def test_settled_mapped_instances_are_counted_and_waiting_ones_read_row_by_row(
    session_factory: sessionmaker[Session],
) -> None:
    states = ["success", "failed", "running", "success", "none", "removed", "skipped", "queued"]
    rows = [("p", -1, "success"), ("reduce", -1, "none")]
    rows += [("m", i, s) for i, s in enumerate(states)]
    rows += [("G.g", i, s) for i, s in enumerate(["success", "failed", "success"])]
    _seed(session_factory, rows)
    dag = _dag()
    with session_factory() as session:
        full = _load_instances(session, "d", "r")
        summarized = load_summarized(session, dag, "r")
    assert summarized is not None
    assert set(summarized) == set(full)
    assert _by_task(summarized) == _by_task(full)
    for key, instance in summarized.items():
        assert (instance.task_id, instance.map_index) == (
            key if isinstance(key, tuple) else (key, -1)
        )
        if instance.task_id != "m" or str(instance.state) == "none":
            assert instance == full[key]  # waiting instances, and every one in a mapped group


def test_a_mapped_task_whose_indexes_have_a_gap_is_read_row_by_row(
    session_factory: sessionmaker[Session],
) -> None:
    _seed(session_factory, [("p", -1, "success"), ("m", 0, "success"), ("m", 2, "success")])
    with session_factory() as session:
        assert load_summarized(session, _dag(), "r") is None


def test_a_mapped_task_with_waiting_and_scheduled_instances_is_read_row_by_row(
    session_factory: sessionmaker[Session],
) -> None:
    """A waiting instance may revise the task's length, which removes the scheduled
    instances past it: their indexes must be the real ones."""
    rows = [("p", -1, "success"), ("m", 0, "scheduled"), ("m", 1, "up_for_retry")]
    _seed(session_factory, rows)
    with session_factory() as session:
        assert load_summarized(session, _dag(), "r") is None


def test_a_mapped_task_whose_instances_all_wait_for_slots_is_counted(
    session_factory: sessionmaker[Session],
) -> None:
    rows = [("p", -1, "success"), ("reduce", -1, "none")]
    rows += [("m", i, "scheduled" if i % 3 else "running") for i in range(30)]
    _seed(session_factory, rows)
    with session_factory() as session:
        full = _load_instances(session, "d", "r")
        summarized = load_summarized(session, _dag(), "r")
    assert summarized is not None
    assert set(summarized) == set(full)
    assert _by_task(summarized) == _by_task(full)
