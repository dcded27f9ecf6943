"""send_email and EmailOperator against a real SMTP server (aiosmtpd) started by the test
on loopback, which writes what it receives to a maildir the test reads back."""

from __future__ import annotations

import mailbox
import random
import smtplib
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import Message
from pathlib import Path

import pytest

from cluster.dagfiles.sla_notify import SlaMissInfo, notify
from cluster.errors import EmailError
from cluster.execution.alert_email import wants_email
from cluster.execution.execute import execute_try
from cluster.operators.email import EmailOperator
from cluster.operators.empty import EmptyOperator
from cluster.operators.python import PythonOperator
from cluster.sdk import DAG, send_email
from cluster.sdk.node import NodeOptions, SmtpOptions, node_options, set_node_options
from cluster.sdk.runtime import Connection, set_runtime
from cluster.sdk.taskrun import execute_task
from cluster.sdk.testing import InMemoryRuntime, InMemoryTaskInstance, make_context
from tests.waiting import wait_for


def free_port() -> int:
    """A free loopback port below the ephemeral range (TESTING.md)."""
    for _ in range(50):
        port = random.randint(20000, 30000)
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port")


def answers(port: int) -> bool:
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=1) as client:
            return client.noop()[0] == 250
    except OSError:
        return False


@pytest.fixture(scope="module")
def smtp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    maildir = tmp_path_factory.mktemp("mail") / "inbox"
    port = free_port()
    command = [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}",
               "-c", "aiosmtpd.handlers.Mailbox", str(maildir)]  # fmt: skip
    log = tmp_path_factory.mktemp("smtp-log") / "server.log"
    with open(log, "w") as out:
        server = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for(
            lambda: answers(port), timeout=20, message=lambda: f"SMTP server: {log.read_text()}"
        )
        yield port, maildir
    finally:
        server.terminate()
        server.wait(10)


@pytest.fixture
def smtp(smtp_server: tuple[int, Path]) -> Iterator[Path]:
    """Node options pointing at the server (plain SMTP: it offers no STARTTLS)."""
    port, maildir = smtp_server
    before = node_options()
    set_node_options(NodeOptions(smtp=SmtpOptions(host="127.0.0.1", port=port, starttls=False,
                                                  mail_from="tradewind@example.com", retry_limit=2)))  # fmt: skip
    yield maildir
    set_node_options(before)


def received(maildir: Path, subject: str) -> Message:
    def find() -> Message | None:
        for message in mailbox.Maildir(str(maildir), create=False):
            if message["Subject"] == subject:
                return message
        return None

    return wait_for(find, timeout=10, message=f"a message with subject {subject!r}")


def test_send_email_delivers_html_with_cc_bcc_and_an_attachment(smtp: Path, tmp_path: Path) -> None:
    attachment = tmp_path / "report.csv"
    attachment.write_text("a,b\n1,2\n")
    send_email(
        "one@example.com; two@example.com",
        "Daily report",
        "<h1>All good</h1>",
        files=[str(attachment)],
        cc="boss@example.com",
        bcc=["hidden@example.com"],
        custom_headers={"X-Tradewind": "yes"},
    )
    message = received(smtp, "Daily report")
    assert message["From"] == "tradewind@example.com"
    assert message["To"] == "one@example.com, two@example.com"
    assert message["CC"] == "boss@example.com" and message["X-Tradewind"] == "yes"
    assert "hidden@example.com" not in str(message["To"]) + str(message["CC"])
    assert "hidden@example.com" in message["X-RcptTo"]  # on the envelope only
    parts = {part.get_content_type(): part for part in message.walk()}
    assert b"<h1>All good</h1>" in parts["text/html"].get_payload(decode=True)
    assert parts["application/octet-stream"].get_filename() == "report.csv"


def test_email_operator_renders_its_fields(smtp: Path) -> None:
    with DAG("mail"):
        op = EmailOperator(
            task_id="send",
            to="ops@example.com",
            subject="Run {{ ds }}",
            html_content="<p>{{ params.what }} finished</p>",
            params={"what": "ingest"},
        )
    context = make_context(op)
    execute_task(op, context)
    message = received(smtp, f"Run {context['ds']}")
    body = next(p for p in message.walk() if p.get_content_type() == "text/html")
    assert body.get_payload(decode=True) == b"<p>ingest finished</p>"


def test_login_comes_from_the_smtp_default_connection(smtp: Path) -> None:
    """The server offers no AUTH: a login taken from the connection is attempted and fails."""
    set_runtime(
        InMemoryRuntime(
            connections={"smtp_default": Connection("smtp_default", login="u", password="p")}
        )
    )
    try:
        with pytest.raises(EmailError, match="SMTPNotSupportedError"):
            send_email("a@example.com", "with login", "x")
    finally:
        set_runtime(None)


def test_an_unreachable_server_fails_after_the_retries() -> None:
    before = node_options()
    set_node_options(
        NodeOptions(smtp=SmtpOptions(host="127.0.0.1", port=free_port(), retry_limit=2, timeout=2))
    )
    try:
        with pytest.raises(EmailError, match="ConnectionRefusedError"):
            send_email("a@example.com", "nobody listens", "x")
    finally:
        set_node_options(before)


def test_dryrun_sends_nothing_and_a_sender_is_required(smtp: Path) -> None:
    send_email("a@example.com", "dry", "x", dryrun=True)
    assert all(m["Subject"] != "dry" for m in mailbox.Maildir(str(smtp), create=False))
    before = node_options()
    set_node_options(NodeOptions(smtp=SmtpOptions(mail_from="")))
    try:
        with pytest.raises(EmailError, match="no sender"):
            send_email("a@example.com", "no sender", "x")
    finally:
        set_node_options(before)


def _fail(message: str) -> None:
    raise ValueError(message)


def test_a_failed_try_emails_its_task_as_airflow_does(smtp: Path) -> None:
    """email_on_failure (default on) sends Airflow's alert; email_on_retry=False sends none
    for a try that will be retried, so only the final failure's email arrives."""
    with DAG("alerts"):
        op = PythonOperator(
            task_id="load",
            python_callable=_fail,
            op_args=["bad <row>\nline 2"],
            email=["oncall@example.com"],
            retries=1,
            email_on_retry=False,
        )
    for try_number in (1, 2):
        ti = InMemoryTaskInstance(dag_id="alerts", task_id="load", try_number=try_number,
                                  max_tries=1)  # fmt: skip
        outcome = execute_try(op, make_context(op, ti=ti), timeout=None, xcom_max_size=1 << 16)
        assert outcome.state == "failed"
    message = received(smtp, "Airflow alert: <TaskInstance: alerts.load manual__test [failed]>")
    assert message["To"] == "oncall@example.com"
    body = next(p for p in message.walk() if p.get_content_type() == "text/html")
    text = body.get_payload(decode=True).decode()
    assert "Try 2 out of 2<br>" in text
    assert "ValueError: bad &lt;row&gt;" in text and "attempt=2.log" in text
    retry_subject = "Airflow alert: <TaskInstance: alerts.load manual__test [up_for_retry]>"
    assert all(m["Subject"] != retry_subject for m in mailbox.Maildir(str(smtp), create=False))


def test_the_flags_and_addresses_decide_whether_a_failure_emails() -> None:
    with DAG("flags"):
        quiet = EmptyOperator(task_id="quiet")
        loud = EmptyOperator(task_id="loud", email="a@example.com", email_on_retry=False)
    assert not wants_email(quiet, will_retry=False)
    assert wants_email(loud, will_retry=False)
    assert not wants_email(loud, will_retry=True)


def test_an_sla_miss_emails_the_tasks_addresses_as_airflow_does(smtp: Path) -> None:
    """Airflow's SLA report: one mail to every address of the tasks that missed, with its
    subject and lists; ``email_sent`` and ``notified`` say so (no callback here)."""
    with DAG("reports") as dag:
        EmptyOperator(task_id="build", email="oncall@example.com; lead@example.com")
        EmptyOperator(task_id="ship")
    when = datetime(2026, 1, 2, tzinfo=UTC)
    misses = (SlaMissInfo("reports", "build", when, when),)
    told = notify(dag, misses, (("ship", when),), base_url="http://tw.example:8080")
    assert (told.ok, told.email_sent, told.notified) == (True, True, True)
    message = received(smtp, "[airflow] SLA miss on DAG=reports")
    assert sorted(message["To"].split(", ")) == ["lead@example.com", "oncall@example.com"]
    body = next(p for p in message.walk() if p.get_content_type() == "text/html")
    text = body.get_payload(decode=True).decode()
    assert "build on 2026-01-02T00:00:00+00:00" in text
    assert "ship on 2026-01-02T00:00:00+00:00" in text and "http://tw.example:8080" in text
