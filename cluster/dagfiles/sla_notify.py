"""Reporting SLA misses in the callback runner's child: Airflow 2.10's notification.

The child is given the DAG's misses not yet reported and the instances blocking them
(read by the runner, as plain data); it calls the DAG's ``sla_miss_callback`` (each of
a list) as ``callback(dag, task_list, blocking_task_list, slas, blocking_tis)`` and
emails the ``email`` addresses of the tasks that missed, with Airflow's subject and
body. As in Airflow, the misses count as notified when a callback or the email
succeeded, and ``email_sent`` only when the email went out.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cluster.sdk import DAG
from cluster.sdk.email import get_email_address_list, send_email

log = logging.getLogger("tradewind.callbacks")


@dataclass(frozen=True)
class SlaMissInfo:
    """One miss as the callback sees it (the attributes of Airflow's ``SlaMiss``)."""

    dag_id: str
    task_id: str
    execution_date: datetime
    timestamp: datetime | None
    email_sent: bool = False
    notification_sent: bool = False
    description: str | None = None


@dataclass(frozen=True)
class BlockingInstance:
    """A task instance of a run with a miss that has not succeeded (``blocking_tis``)."""

    dag_id: str
    task_id: str
    execution_date: datetime
    task: Any = None

    @property
    def logical_date(self) -> datetime:
        return self.execution_date


@dataclass(frozen=True)
class CallbackOutcome:
    ok: bool
    message: str
    notified: bool
    email_sent: bool


def notify(
    dag: DAG,
    misses: tuple[SlaMissInfo, ...],
    blocking: tuple[tuple[str, datetime], ...],
    *,
    base_url: str,
) -> CallbackOutcome:
    """Call the callbacks and send the email; never raises for a callback's error."""
    if not misses:
        return CallbackOutcome(True, "no SLA miss left to report", False, False)
    task_list = "\n".join(f"{m.task_id} on {m.execution_date.isoformat()}" for m in misses)
    blocking_tis = [
        BlockingInstance(dag.dag_id, t, d, dag.task_dict.get(t))
        for t, d in blocking
        if t in dag.task_dict
    ]
    blocking_list = "\n".join(
        f"{b.task_id} on {b.execution_date.isoformat()}" for b in blocking_tis
    )
    errors: list[str] = []
    notified = False
    found = dag.sla_miss_callback
    for callback in found if isinstance(found, list | tuple) else [found] if found else []:
        try:
            callback(dag, task_list, blocking_list, list(misses), blocking_tis)
            notified = True
        except Exception as exc:
            log.exception("Could not call sla_miss_callback for DAG %s", dag.dag_id)
            errors.append(f"sla_miss_callback: {type(exc).__name__}: {exc}")
    email_sent = False
    emails = _emails(dag, misses)
    if emails:
        body = _email_body(task_list, blocking_list, base_url)
        try:
            send_email(sorted(emails), f"[airflow] SLA miss on DAG={dag.dag_id}", body)
            email_sent = notified = True
        except Exception as exc:
            log.exception("Could not send SLA Miss email notification for DAG %s", dag.dag_id)
            errors.append(f"email: {type(exc).__name__}: {exc}")
    message = "; ".join(errors) or f"{len(misses)} misses reported"
    return CallbackOutcome(not errors, message, notified, email_sent)


def _emails(dag: DAG, misses: tuple[SlaMissInfo, ...]) -> set[str]:
    emails: set[str] = set()
    for miss in misses:
        task = dag.task_dict.get(miss.task_id)
        if task is None:
            log.warning("Task %s doesn't exist in DAG anymore, skipping SLA miss", miss.task_id)
        elif task.email:
            emails.update(get_email_address_list(task.email))
    return emails


def _email_body(task_list: str, blocking_list: str, base_url: str) -> str:
    return f"""\
            Here's a list of tasks that missed their SLAs:
            <pre><code>{task_list}\n<code></pre>
            Blocking tasks:
            <pre><code>{blocking_list}<code></pre>
            Airflow Webserver URL: {base_url}
            """
