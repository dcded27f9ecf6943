"""Benchmark scheduler failover: how long scheduling stops when the leader goes.

Starts three real ``tradewind scheduler`` processes in a ZooKeeper election (a real
three-node ensemble), two Celery workers on a real RabbitMQ node and a private
MariaDB, with the same harness the HA tests use. Each round triggers the 300-task
``ha_wide`` DAG, waits until it is under way, then stops the leader (SIGKILL or
SIGTERM) and reads from the metastore when the new leader queued its first task:

    gap = first ``queued_at`` under the new epoch - the moment the leader was stopped

The stopped scheduler is started again before the next round. Prints figures, never
asserts on time.

    python bench/failover.py                      # 3 rounds of each kind
    python bench/failover.py --rounds 5 --session-timeout 4
"""

from __future__ import annotations

import argparse
import signal
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cluster.devcluster.services.mariadb import MariaDB  # noqa: E402
from cluster.devcluster.services.ports import free_port  # noqa: E402
from tests.cluster.ha_harness import HaDeployment, kill_group, start_zookeeper  # noqa: E402
from tests.integration.celery_harness import TradewindProcess, start_rabbitmq  # noqa: E402
from tests.integration.scheduler_harness import wait_for  # noqa: E402

WORKERS = {"127.0.1.21": "default", "127.0.1.22": "default"}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each kind of stop")
    parser.add_argument("--session-timeout", type=float, default=4.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tw-failover-") as tmp, ExitStack() as stack:
        base = Path(tmp)
        mariadb = MariaDB(base / "mariadb", port=free_port(), fsync=False)
        mariadb.start()
        stack.callback(mariadb.stop)
        broker = start_rabbitmq(base / "rabbitmq", nodes=1)
        stack.callback(broker.stop)
        zookeeper = start_zookeeper(base / "zookeeper")
        stack.callback(zookeeper.stop)
        (base / "cluster").mkdir()
        deployment = HaDeployment(
            base / "cluster",
            zookeeper_hosts=zookeeper.hosts,
            session_timeout=args.session_timeout,
            metastore_url=mariadb.create_database("failover"),
            broker_urls=broker.urls,
            workers=WORKERS,
            concurrency=4,
        )
        deployment.start()
        stack.callback(deployment.stop)
        print(f"session timeout {args.session_timeout:g} s; 3 schedulers, 2 workers x 4")
        for kind in ("SIGKILL", "SIGTERM"):
            gaps = [measure(deployment, kind, n) for n in range(1, args.rounds + 1)]
            print(
                f"{kind}: first task queued by the new leader after "
                f"median {statistics.median(gaps):.2f} s (min {min(gaps):.2f}, max {max(gaps):.2f})"
            )


def measure(deployment: HaDeployment, kind: str, round_number: int) -> float:
    """One round: stop the leader mid-run, return seconds until the new leader queued."""
    leader, lease = deployment.leader()
    run_id = deployment.trigger("ha_wide")
    wait_for(lambda: _succeeded(deployment, run_id) >= 30, timeout=180, message="30 tasks done")
    stopped_at = datetime.now(UTC)
    if kind == "SIGKILL":
        kill_group(leader)
    else:
        leader.signal(signal.SIGTERM)
    _, new_lease = deployment.leader(newer_than=lease.epoch, timeout=120)
    first = wait_for(
        lambda: _first_queued(deployment, run_id, new_lease.epoch), timeout=120, interval=0.05
    )
    gap = (first - stopped_at).total_seconds()
    state = deployment.wait_for_run("ha_wide", run_id, timeout=300)
    print(f"  {kind} round {round_number}: {gap:.2f} s; run {state}")
    _restart(deployment, leader)
    return gap


def _succeeded(deployment: HaDeployment, run_id: str) -> int:
    return sum(s == "success" for s in deployment.task_states("ha_wide", run_id).values())


def _first_queued(deployment: HaDeployment, run_id: str, epoch: int) -> datetime | None:
    times = [q for e, q in deployment.dispatches("ha_wide", run_id) if e >= epoch]
    return min(times) if times else None


def _restart(deployment: HaDeployment, stopped: TradewindProcess) -> None:
    stopped.stop()
    index = deployment.schedulers.index(stopped)
    log = stopped.log_file.with_suffix(f".{int(time.time())}.log")
    deployment.schedulers[index] = TradewindProcess(stopped.env, ["scheduler"], log).start()


if __name__ == "__main__":
    main()
