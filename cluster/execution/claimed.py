"""Running the user code of a claimed try in this process, with the context it sees.

The pool's runner (:mod:`cluster.execution.pool`) calls it in the pool process that
runs the try, for the local executor, Celery workers and ``tradewind tasks run`` alike.
"""

from __future__ import annotations

from cryptography.fernet import MultiFernet

from cluster.execution.execute import execute_try
from cluster.execution.handle import MetastoreRuntime, MetastoreTaskInstance, SessionFactory
from cluster.execution.outcome import TryOutcome
from cluster.execution.recording import ClaimedTry
from cluster.sdk import DAG, BaseOperator
from cluster.sdk.context import RunInfo, build_context
from cluster.sdk.runtime import set_runtime


def execute_claimed(
    dag: DAG,
    task: BaseOperator,
    claimed: ClaimedTry,
    *,
    hostname: str,
    sessions: SessionFactory,
    fernet: MultiFernet,
    timeout: float | None,
    xcom_max_size: int,
) -> TryOutcome:
    """Build the template context of ``claimed`` and execute ``task`` (see :func:`execute_try`).

    :param sessions: the metastore connection of this process, for ``xcom_pull``,
        ``Variable`` and connections (opened on first use).
    """
    set_runtime(MetastoreRuntime(sessions=sessions, fernet=fernet))
    ti = MetastoreTaskInstance(claimed, hostname=hostname, sessions=sessions)
    run = RunInfo(
        dag_id=claimed.key.dag_id,
        run_id=claimed.key.run_id,
        logical_date=claimed.logical_date or claimed.start_date,
        data_interval_start=claimed.data_interval_start
        or claimed.logical_date
        or claimed.start_date,
        data_interval_end=claimed.data_interval_end or claimed.logical_date or claimed.start_date,
        run_type=claimed.run_type,
        conf=claimed.conf,
        start_date=claimed.run_start_date,
    )
    prev_start, prev_end, prev_started = claimed.prev_success
    context = build_context(
        dag=dag,
        task=task,
        ti=ti,
        dag_run=run,
        prev_data_interval_start_success=prev_start,
        prev_data_interval_end_success=prev_end,
        prev_start_date_success=prev_started,
    )
    resume = (claimed.next_method, claimed.next_kwargs or {}) if claimed.next_method else None
    return execute_try(task, context, timeout=timeout, xcom_max_size=xcom_max_size, resume=resume)
