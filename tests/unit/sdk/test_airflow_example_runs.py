"""Every DAG of Airflow 2.10.5's example files runs under Tradewind's ``dags test`` to the
states a real Airflow's ``dags test`` recorded (``runs.json``'s ``dags_test``): the same run
state and the same state for every ``(task_id, map_index)``, both with the imports swapped
(ARCHITECTURE.md) and with the files unchanged through ``core.airflow_compat``'s hook.

A branch that picks at random, or by the wall clock, cannot pick what Airflow picked on
the day it ran: for those (``CHANCE``) the run state and the instances are compared, not
which branch each instance was on. ``NOT_YET`` lists what does not match yet, checked both ways so
the list only shrinks; ``UNFINISHED`` what Airflow's own ``dags test`` never finished, and
``NETWORK`` what needs the internet.

The DAGs run side by side in forked children (many only wait on a ``sleep``), so the
whole comparison costs about as long as its slowest DAG.
"""

from __future__ import annotations

import json
import multiprocessing
import pathlib
import traceback
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from cluster.dagfiles.importer import dags_in_module, load_module
from cluster.execution import inprocess
from cluster.sdk import airflow_compat
from cluster.sdk.runtime import set_runtime
from cluster.sdk.testing import InMemoryRuntime
from tests.airflow_compat import localize_example_helpers, rewrite_tree

FIXTURES = pathlib.Path(__file__).parents[2] / "fixtures" / "airflow"
RUNS = json.loads((FIXTURES / "runs.json").read_text())
STRUCTURE = json.loads((FIXTURES / "structure.json").read_text())
#: as ``dags test`` reads a date without a zone: in UTC (core.default_timezone)
LOGICAL_DATE = datetime.fromisoformat(RUNS["logical_date"]).replace(tzinfo=UTC)
#: children at once: most examples wait on a ``sleep`` and use little CPU
WORKERS = 16
#: a run longer than this is a hang (Airflow's slowest example took 64 s)
RUN_TIMEOUT = 240.0

#: branches that choose by ``random`` or by today's date or time
CHANCE = {
    "example_branch_operator",  # random.choice
    "example_branch_python_operator_decorator",  # random.choice
    "example_branch_datetime_operator_2",  # the wall clock's time of day
    "example_branch_datetime_operator_3",  # the wall clock's date
    "example_weekday_branch_operator",  # today's weekday
}
#: Airflow's own ``dags test`` stopped at its 300 s limit without an end state
UNFINISHED = {
    "example_external_task_marker_child",  # its sensors wait for a parent run never made
    "example_sensors",  # sensors waiting on files and dates (see test_airflow_deferral_runs)
    "example_subdag_operator",  # a SubDAG runs only under a scheduler
}
#: needs the internet (Airflow's run failed on DNS here; CI reaches no outside host either)
NETWORK = {"example_dag_decorator"}
#: what does not run as on Airflow yet, with why
NOT_YET = {
    "example_subdag_operator.section-1": "SubDAGs (gone in Airflow 3) are not supported",
    "example_subdag_operator.section-2": "SubDAGs (gone in Airflow 3) are not supported",
}
DAG_IDS = sorted(set(RUNS["dags_test"]) - UNFINISHED - NETWORK)


def expected(dag_id: str) -> dict[str, Any]:
    """Airflow's outcome: a run state and instances, or ``None`` where it refused to run."""
    recorded = RUNS["dags_test"][dag_id]
    return recorded.get("observed", recorded)


def run_one(job: tuple[str, str, bool]) -> dict[str, Any]:
    """In a forked child: import one example file and run one of its DAGs."""
    dag_id, folder, unchanged = job
    try:
        if unchanged:
            airflow_compat.install()
        set_runtime(InMemoryRuntime())
        path = pathlib.Path(folder) / STRUCTURE["dags"][dag_id]["file"]
        (dag,) = [d for d in dags_in_module(load_module(path, search_path=path.parent))
                  if d.dag_id == dag_id]  # fmt: skip
        state, results = inprocess.test_dag(dag, logical_date=LOGICAL_DATE, sleep=lambda _: None)
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
    instances = sorted([r.task_id, r.map_index, str(r.state)] for r in results.values())
    return {"state": str(state), "task_instances": instances}


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[tuple[str, bool], Any]]:
    swapped = tmp_path_factory.mktemp("swapped")
    rewrite_tree(FIXTURES / "example_dags", swapped)
    unchanged = tmp_path_factory.mktemp("unchanged")
    rewrite_tree(FIXTURES / "example_dags", unchanged, transform=localize_example_helpers)
    jobs = [(d, str(unchanged if u else swapped), u) for d in DAG_IDS for u in (False, True)]
    with multiprocessing.get_context("fork").Pool(WORKERS, maxtasksperchild=1) as pool:
        pending = {(d, u): pool.apply_async(run_one, ((d, f, u),)) for d, f, u in jobs}
        yield {key: result.get(timeout=RUN_TIMEOUT) for key, result in pending.items()}


def mismatch(dag_id: str, ours: dict[str, Any]) -> str | None:
    """``None`` when Tradewind's run ended as Airflow's did, else how it differs."""
    theirs = expected(dag_id)
    if theirs["state"] is None:  # Airflow refused before making a run
        return None if "error" in ours else f"Airflow refused ({theirs['error']}); we ran"
    if "error" in ours:
        return ours["error"]
    if ours["state"] != theirs["state"]:
        return f"run {ours['state']}, Airflow's {theirs['state']}"
    mine, airflows = ours["task_instances"], sorted(theirs["task_instances"])
    if dag_id in CHANCE:
        mine, airflows = [i[:2] for i in mine], [i[:2] for i in airflows]
    if mine != airflows:
        return f"instances {mine}, Airflow's {airflows}"
    return None


@pytest.mark.parametrize("unchanged", [False, True], ids=["swapped", "unchanged"])
@pytest.mark.parametrize("dag_id", DAG_IDS)
def test_example_runs_as_on_airflow_unless_listed(
    dag_id: str, unchanged: bool, outcomes: dict[tuple[str, bool], Any]
) -> None:
    reason = mismatch(dag_id, outcomes[dag_id, unchanged])
    if dag_id in NOT_YET:
        assert reason is not None, f"{dag_id} now runs as on Airflow: remove it from NOT_YET"
    else:
        assert reason is None, f"{dag_id}: {reason}"


def test_the_lists_name_only_recorded_dags() -> None:
    assert set(RUNS["dags_test"]) == set(STRUCTURE["dags"])
    assert (CHANCE | UNFINISHED | NETWORK | set(NOT_YET)) <= set(RUNS["dags_test"])
    assert all(RUNS["dags_test"][d]["exit_code"] is None for d in UNFINISHED)
