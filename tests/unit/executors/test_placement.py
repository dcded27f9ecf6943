"""Which idle pool process takes which waiting message, and when a cold one imports.

:func:`place` is a plain function over snapshots and :class:`ColdStarts` is the cost
model it asks, so every rule is walked here with made-up times: no processes, no
sleeps. (What needs real processes, deaths, kills and timeouts, is in
``test_local_executor.py``.)
"""

from __future__ import annotations

from collections.abc import Iterable

from cluster.executors.cold_starts import (
    BUSY_CORES,
    BUSY_CORES_WORKERS,
    COLD_PATIENCE,
    COLD_STARTS,
    QUICK_TRY,
    ColdStarts,
    Version,
    VersionCost,
)
from cluster.executors.placement import (
    Assignment,
    BusyWorker,
    IdleWorker,
    RunningTry,
    place,
    prefetch,
)
from cluster.messages import TaskMessage

ETL: Version = ("etl", "v1")
REPORT: Version = ("report", "r1")


def messages(version: Version, count: int, *, first: int = 0) -> list[TaskMessage]:
    dag_id, fingerprint = version
    return [
        TaskMessage(dag_id, "manual__1", f"t{i}", -1, 1, fingerprint)
        for i in range(first, first + count)
    ]


def cold(*numbers: int) -> list[IdleWorker]:
    return [IdleWorker(n) for n in numbers]


def waiting_since(costs: ColdStarts, waiting: Iterable[TaskMessage], now: float) -> ColdStarts:
    """What the executor does when messages arrive: their versions' backlog clocks run."""
    for message in waiting:
        costs.waiting((message.dag_id, message.fingerprint), now)
    return costs


def test_a_warm_worker_goes_first_the_most_recently_idle_of_them() -> None:
    first, second = messages(ETL, 2)
    idle = [IdleWorker(0, {ETL}), IdleWorker(1), IdleWorker(2, {ETL}), IdleWorker(3)]
    costs = waiting_since(ColdStarts(), [first, second], 0.0)

    placed = place([first, second], idle, [], costs, now=0.0)

    # worker 3 was idle last but is cold: the warm workers 2, then 0, take the tries
    assert placed.assignments == [
        Assignment(2, first, cold=False),
        Assignment(0, second, cold=False),
    ]
    assert placed.waiting == []


def test_a_version_no_worker_runs_starts_cold_on_the_most_recently_idle_worker() -> None:
    (message,) = messages(ETL, 1)
    costs = waiting_since(ColdStarts(), [message], 0.0)

    placed = place([message], [IdleWorker(0, {REPORT}), *cold(1, 2)], [], costs, now=0.0)

    assert placed.assignments == [Assignment(2, message, cold=True)]


def test_a_version_whose_workers_all_still_import_starts_another_cold_one() -> None:
    (message,) = messages(ETL, 1)
    costs = waiting_since(ColdStarts(), [message], 0.0)
    importing = [RunningTry(ETL, cold=True)]  # none runs the version yet: no one to wait for

    placed = place([message], cold(0), importing, costs, now=0.0)

    assert placed.assignments == [Assignment(0, message, cold=True)]


def test_at_most_cold_starts_workers_import_one_version_at_once() -> None:
    waiting = messages(ETL, COLD_STARTS + 2)
    costs = waiting_since(ColdStarts(), waiting, 0.0)

    placed = place(waiting, cold(*range(COLD_STARTS + 2)), [], costs, now=0.0)

    assert [a.message for a in placed.assignments] == waiting[:COLD_STARTS]
    assert all(a.cold for a in placed.assignments)
    assert placed.waiting == waiting[COLD_STARTS:]
    # even once their patience ran out, long after, the others wait for the imports
    importing = [RunningTry(ETL, cold=True) for _ in range(COLD_STARTS)]
    later = place(placed.waiting, cold(98, 99), importing, costs, now=60.0)
    assert later.assignments == [] and later.waiting == waiting[COLD_STARTS:]


def test_a_cold_start_pays_only_when_the_queue_would_wait_longer_than_an_import() -> None:
    costs = ColdStarts()
    costs.imported(ETL, 0.1)
    costs.ran(ETL, 0.005)  # short tries
    waiting = messages(ETL, 32)
    waiting_since(costs, waiting, 10.0)
    started = RunningTry(ETL, started_at=10.0)

    # 32 tries on 2 warm workers: 80 ms of queue, less than a 100 ms import
    kept = place(waiting, cold(7), [started, started], costs, now=10.01)
    assert kept.assignments == [] and kept.waiting == waiting
    # on 1 warm worker: 160 ms of queue, so a cold worker imports
    spread = place(waiting, cold(7), [started], costs, now=10.01)
    assert spread.assignments == [Assignment(7, waiting[0], cold=True)]
    assert spread.waiting == waiting[1:]


def test_each_cold_start_shortens_the_queue_the_next_one_weighs() -> None:
    costs = ColdStarts()
    costs.imported(ETL, 0.1)
    costs.ran(ETL, 0.036)
    waiting = messages(ETL, 6)
    waiting_since(costs, waiting, 30.0)

    placed = place(waiting, cold(1, 2, 3), [RunningTry(ETL, started_at=30.0)], costs, now=30.0)

    # 6 tries on 1 worker: 216 ms of queue, an import pays; then 5 on 2: 90 ms, it does not
    assert placed.assignments == [Assignment(3, waiting[0], cold=True)]


def test_long_tries_spread_over_cold_workers_before_any_of_them_ended() -> None:
    costs = ColdStarts()
    costs.imported(ETL, 0.1)  # measured; no try has ended yet
    (message,) = messages(ETL, 1)
    waiting_since(costs, [message], 20.0)

    # the one running try has run 10 ms: it may end before an import would
    short = place([message], cold(3), [RunningTry(ETL, started_at=19.99)], costs, now=20.0)
    assert short.assignments == []
    # it has run 1 s, longer than an import: the waiting one runs beside it
    long = place([message], cold(3), [RunningTry(ETL, started_at=19.0)], costs, now=20.0)
    assert long.assignments == [Assignment(3, message, cold=True)]


def test_tries_that_wait_longer_than_an_import_all_run_side_by_side() -> None:
    """Three 2 s tries of one version on eight cold workers, imports of 50 ms: each
    placement is followed to its workers' "started"; all three run long before the
    first try ends. (This walk replaces a test that forked eight processes.)"""
    import_time, try_time = 0.05, 2.0
    waiting = messages(ETL, 3)
    costs = waiting_since(ColdStarts(), waiting, 0.0)
    idle = cold(*range(8))
    running: list[RunningTry] = []
    now = 0.0
    while waiting and now < try_time:
        placed = place(waiting, idle, running, costs, now)
        for assignment in placed.assignments:
            idle = [w for w in idle if w.number != assignment.worker]
            running.append(RunningTry(ETL, cold=assignment.cold))
        waiting = placed.waiting
        now += import_time  # the imports end: the executor measures them
        for current in running:
            if current.started_at is None:
                current.started_at = now
                costs.imported(ETL, import_time)
    assert waiting == [] and len(running) == 3
    assert now < try_time / 10


def test_a_message_of_another_dag_passes_one_that_must_wait() -> None:
    held, later = messages(ETL, 2)
    (other,) = messages(REPORT, 1)
    costs = waiting_since(ColdStarts(), [held, other, later], 0.0)
    importing = [RunningTry(ETL, cold=True) for _ in range(COLD_STARTS)]

    placed = place([held, other, later], cold(4), importing, costs, now=0.0)

    assert placed.assignments == [Assignment(4, other, cold=True)]
    assert placed.waiting == [held, later]  # in their order


def test_with_no_idle_worker_every_message_keeps_its_place() -> None:
    waiting = messages(ETL, 2) + messages(REPORT, 1)
    costs = waiting_since(ColdStarts(), waiting, 0.0)

    placed = place(waiting, [], [], costs, now=5.0)

    assert placed.assignments == [] and placed.waiting == waiting
    assert costs.patience_ends() == [COLD_PATIENCE, COLD_PATIENCE]  # both clocks still run


def test_patience_alone_starts_one_cold_worker_per_import_time() -> None:
    costs = ColdStarts()
    costs.imported(ETL, 0.2)
    for _ in range(100):  # short tries: the costs alone never pay here, and a
        costs.ran(ETL, 0.01)  # second of them leaves room for imports
    waiting = messages(ETL, 2)
    waiting_since(costs, waiting, 100.0)
    warm = [RunningTry(ETL, started_at=100.0), RunningTry(ETL, started_at=100.0)]

    early = place(waiting, cold(1, 2), warm, costs, now=100.1)
    assert early.assignments == []
    # the backlog lasted an import: one more worker imports, and the clock restarts
    placed = place(waiting, cold(1, 2), warm, costs, now=100.25)
    assert placed.assignments == [Assignment(2, waiting[0], cold=True)]
    assert placed.waiting == waiting[1:]
    assert costs.patience_ends() == [100.25 + 0.2]


def test_a_version_with_nothing_left_waiting_loses_its_backlog_clock() -> None:
    placed_now, (waits,) = messages(ETL, 1), messages(REPORT, 1)
    costs = waiting_since(ColdStarts(), [*placed_now, waits], 0.0)
    importing = [RunningTry(REPORT, cold=True) for _ in range(COLD_STARTS)]

    placed = place([*placed_now, waits], [IdleWorker(0, {ETL})], importing, costs, now=1.0)

    assert placed.assignments == [Assignment(0, placed_now[0], cold=False)]
    # ETL's clock ended with its backlog; REPORT's still runs from 0.0
    assert costs.patience_ends() == [COLD_PATIENCE]


def test_a_backlog_that_lasts_an_import_warms_one_more_worker() -> None:
    costs = ColdStarts()
    version = ("etl", "v1")
    costs.imported(version, 0.2)
    for _ in range(100):  # short tries: the queue ahead drains in 40 ms; a second of
        costs.ran(version, 0.01)  # them leaves room for two more imports
    asked = {"waiting": 8, "workers": 2, "running_for": 0.0}
    costs.waiting(version, 100.0)
    costs.waiting(version, 100.15)  # a later message does not restart the clock
    assert not costs.pays(version, now=100.1, **asked)
    assert costs.pays(version, now=100.2, **asked)
    costs.cold_started(version, 100.2)  # the next cold start waits as long again
    assert not costs.pays(version, now=100.3, **asked)
    costs.waiting_only(set())  # the backlog drained: the clock starts afresh
    costs.waiting(version, 101.0)
    assert not costs.pays(version, now=101.1, **asked)


def test_a_cold_start_pays_only_when_the_waiting_would_outlast_an_import() -> None:
    assert VersionCost().worth_a_cold_start(waiting=100, workers=1) is None  # no import seen
    first_tries_running = VersionCost(load=0.1)  # no try ended yet: how long they run counts
    assert first_tries_running.worth_a_cold_start(waiting=4, workers=2, running_for=0.01) is False
    assert first_tries_running.worth_a_cold_start(waiting=4, workers=2, running_for=1.0) is True
    short_tasks = VersionCost(load=0.1, busy=0.005)  # 32 waiting on 2 workers: 80 ms < 100 ms
    assert short_tasks.worth_a_cold_start(waiting=32, workers=2) is False
    assert short_tasks.worth_a_cold_start(waiting=32, workers=1) is True
    long_tasks = VersionCost(load=0.1, busy=0.3)  # a try outlasts an import: spread
    assert long_tasks.worth_a_cold_start(waiting=1, workers=4) is True
    heavy_file = VersionCost(load=1.0, busy=0.3)  # only a long queue pays for a 1 s import
    assert heavy_file.worth_a_cold_start(waiting=1, workers=1) is False
    assert heavy_file.worth_a_cold_start(waiting=8, workers=2) is True


def test_past_one_process_per_core_a_backlog_pays_for_imports_only_within_their_share() -> None:
    """A huge DAG (1.5 s imports) of no-op tries (10 ms): the cores are what its backlog
    waits for, so more processes importing it would only add imports."""
    costs = ColdStarts()
    version = ("huge", "v1")
    costs.imported(version, 1.5)
    for _ in range(400):  # 4 s of tries: room for one more import (1.5 s), not two
        costs.ran(version, 0.01)
    asked = {"waiting": 30, "workers": COLD_STARTS, "running_for": 0.0}
    costs.waiting(version, 100.0)
    assert costs.pays(version, now=101.5, **asked)
    costs.cold_started(version, 101.5)
    assert not costs.pays(version, now=103.0, **asked)
    assert not costs.pays(version, now=110.0, **asked)
    # fewer processes than cores run it: the backlog alone still warms one more
    assert costs.pays(version, now=110.0, **{**asked, "workers": 1})


def measured(version: Version, *, load: float, busy: float) -> ColdStarts:
    """Costs as the executor measures them: one import, then many tries."""
    costs = ColdStarts()
    costs.imported(version, load)
    for _ in range(20):
        costs.ran(version, busy)
    return costs


def test_while_the_cores_are_busy_quick_tries_warm_no_more_than_a_few_processes_per_core() -> None:
    """A fan-out of Python no-ops: tries of 5 ms and 50 ms imports, on busy cores."""
    costs = measured(ETL, load=0.05, busy=0.005)
    waiting = messages(ETL, 1)
    waiting_since(costs, waiting, 100.0)  # the backlog has lasted an import: patience spent
    crowd = [RunningTry(ETL, started_at=100.9) for _ in range(BUSY_CORES_WORKERS)]

    assert place(waiting, cold(7), crowd[1:], costs, now=101.0, cpu_busy=1.0).assignments == [
        Assignment(7, waiting[0], cold=True)
    ]
    waiting_since(costs, waiting, 200.0)
    placed = place(waiting, cold(7), crowd, costs, now=201.0, cpu_busy=BUSY_CORES)
    assert placed.assignments == []
    assert placed.waiting == waiting
    # the same tries with a core to spare (they wait on something else): one more imports
    spare = place(waiting, cold(7), crowd, costs, now=201.0, cpu_busy=BUSY_CORES - 0.1)
    assert spare.assignments == [Assignment(7, waiting[0], cold=True)]


def test_tries_longer_than_quick_or_than_their_import_are_not_capped() -> None:
    for costs in (
        measured(ETL, load=0.05, busy=0.08),  # longer than an import: it pays for itself
        measured(ETL, load=0.5, busy=0.2),  # not quick
    ):
        waiting = messages(ETL, 1)
        waiting_since(costs, waiting, 100.0)
        crowd = [RunningTry(ETL, started_at=100.9) for _ in range(BUSY_CORES_WORKERS)]
        assert costs.crowded(ETL, BUSY_CORES_WORKERS, cpu_busy=1.0) is False
        assert place(waiting, cold(7), crowd, costs, now=101.0, cpu_busy=1.0).assignments


def test_a_waiting_message_of_a_quick_version_is_queued_behind_a_busy_warm_worker() -> None:
    costs = measured(ETL, load=0.05, busy=0.005)
    waiting = [*messages(ETL, 3), *messages(REPORT, 1)]
    waiting_since(costs, waiting, 100.0)
    busy = [
        BusyWorker(0, ETL, started_at=100.00, warm={ETL}),
        BusyWorker(1, ETL, started_at=99.99, warm={ETL}),  # the longest running: first
        BusyWorker(2, REPORT, started_at=99.95, warm={REPORT}),  # REPORT: not measured
    ]

    placed = prefetch(waiting, busy, costs, now=100.01)

    assert placed.assignments == [
        Assignment(1, waiting[0], cold=False, ahead=True),
        Assignment(0, waiting[1], cold=False, ahead=True),
    ]
    # one queued try per worker; a version not known to be quick waits for a free worker
    assert placed.waiting == [waiting[2], waiting[3]]


def test_nothing_is_queued_behind_a_try_that_has_run_longer_than_a_quick_one() -> None:
    costs = measured(ETL, load=0.05, busy=0.005)
    waiting = messages(ETL, 1)
    waiting_since(costs, waiting, 100.0)
    stuck = [BusyWorker(0, ETL, started_at=100.0, warm={ETL})]

    assert prefetch(waiting, stuck, costs, now=100.0 + QUICK_TRY / 2).assignments
    placed = prefetch(waiting, stuck, costs, now=100.0 + QUICK_TRY * 1.01)
    assert placed.assignments == []
    assert placed.waiting == waiting


def test_nothing_is_queued_behind_a_worker_lacking_the_version_or_behind_a_slow_one() -> None:
    costs = measured(ETL, load=0.05, busy=0.005)
    costs.imported(REPORT, 0.05)
    costs.ran(REPORT, 5.0)  # REPORT's tries are slow: nothing queues behind them
    waiting = messages(ETL, 1)
    waiting_since(costs, waiting, 100.0)
    busy = [
        BusyWorker(0, ETL, started_at=100.0),  # runs ETL but has not kept it (cold try)
        BusyWorker(1, REPORT, started_at=100.0, warm={ETL, REPORT}),
    ]

    assert prefetch(waiting, busy, costs, now=100.01).assignments == []
