"""Airflow's failure and retry emails: ``email`` with ``email_on_failure`` / ``email_on_retry``.

Airflow sends them from the try itself, after it failed, through ``send_email`` and the
node's ``[smtp]`` server; so does Tradewind, with Airflow's subject and body. When the
body with the exception cannot be sent, the one without it is tried (as Airflow does);
an email that still fails is logged in the try's log and never changes the try's end.
"""

from __future__ import annotations

import html
import logging
from typing import Any

from cluster.sdk import BaseOperator
from cluster.sdk.email import send_email

log = logging.getLogger("tradewind.task")

_BODY = (
    "Try {try_number} out of {tries}<br>Exception:<br>{exception}<br>Log: {log}<br>Host: {host}<br>"
)


def wants_email(task: BaseOperator, *, will_retry: bool) -> bool:
    """Whether a failed try of ``task`` sends an email (it has addresses and the flag)."""
    flag = getattr(task, "email_on_retry" if will_retry else "email_on_failure", False)
    return bool(getattr(task, "email", None)) and bool(flag)


def alert_content(ti: Any, message: str, *, will_retry: bool) -> tuple[str, str, str]:
    """Subject, body and the body without the exception, as Airflow words them."""
    state = "up_for_retry" if will_retry else "failed"
    index = f" map_index={ti.map_index}" if ti.map_index >= 0 else ""
    subject = (
        f"Airflow alert: <TaskInstance: {ti.dag_id}.{ti.task_id} {ti.run_id}{index} [{state}]>"
    )
    where = (
        f"dag_id={ti.dag_id}/run_id={ti.run_id}/task_id={ti.task_id}"
        f"{f'/map_index={ti.map_index}' if ti.map_index >= 0 else ''}/attempt={ti.try_number}.log"
    )
    fields = {
        "try_number": ti.try_number,
        "tries": ti.max_tries + 1,
        "log": html.escape(where),
        "host": html.escape(str(getattr(ti, "hostname", "") or "")),
    }
    body = _BODY.format(exception=html.escape(message).replace("\n", "<br>"), **fields)
    without = _BODY.format(exception="Failed attempt to attach error logs", **fields)
    return subject, body, without


def send_alert(task: BaseOperator, ti: Any, message: str, *, will_retry: bool) -> None:
    """Send the failure or retry email of ``task``'s try; errors are logged only."""
    subject, body, without = alert_content(ti, message, will_retry=will_retry)
    to = task.email or []
    try:
        send_email(to, subject, body)
    except Exception:
        try:
            send_email(to, subject, without)
        except Exception:
            log.exception("Failed to send email to: %s", task.email)
