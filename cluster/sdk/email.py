"""``send_email``: Airflow's ``airflow.utils.email.send_email`` over SMTP.

The message is built like Airflow's (a ``multipart/mixed`` MIME message with the HTML
body and any files attached, ``Bcc`` kept out of the headers) and sent through the
node's ``[smtp]`` server (:mod:`cluster.sdk.node`). The login comes from the connection
``conn_id`` (default ``smtp_default``) when it has a login and a password, else from
``smtp.smtp_user`` / ``smtp.smtp_password``. A refused or dropped connection is tried
again up to ``smtp.smtp_retry_limit`` times; every other SMTP error fails at once.
"""

from __future__ import annotations

import logging
import os
import re
import smtplib
import ssl
from collections.abc import Iterable
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import formatdate
from typing import Any

from cluster.errors import EmailError, TradewindError
from cluster.sdk.node import SmtpOptions, node_options
from cluster.sdk.runtime import Connection

log = logging.getLogger("tradewind.task")


def get_email_address_list(addresses: str | Iterable[str]) -> list[str]:
    """Addresses from a list, or from one string separated by ``,`` or ``;``.

    :raises TypeError: for anything else.
    """
    if isinstance(addresses, str):
        return [a.strip() for a in re.split(r"[,;]", addresses) if a.strip()]
    if isinstance(addresses, Iterable):
        listed = list(addresses)
        if not all(isinstance(a, str) for a in listed):
            raise TypeError("The items in your iterable must be strings.")
        return listed
    raise TypeError(f"Unexpected argument type: Received '{type(addresses).__name__}'.")


def build_mime_message(
    mail_from: str | None,
    to: str | Iterable[str],
    subject: str,
    html_content: str,
    files: list[str] | None = None,
    cc: str | Iterable[str] | None = None,
    bcc: str | Iterable[str] | None = None,
    mime_subtype: str = "mixed",
    mime_charset: str = "utf-8",
    custom_headers: dict[str, Any] | None = None,
) -> tuple[MIMEMultipart, list[str]]:
    """The message and every recipient (to, cc and bcc), as Airflow builds them."""
    recipients = get_email_address_list(to)
    msg = MIMEMultipart(mime_subtype)
    msg["Subject"] = subject
    if mail_from:
        msg["From"] = mail_from
    msg["To"] = ", ".join(recipients)
    if cc:
        copies = get_email_address_list(cc)
        msg["CC"] = ", ".join(copies)
        recipients += copies
    if bcc:
        recipients += get_email_address_list(bcc)
    msg["Date"] = formatdate(localtime=True)
    msg.attach(MIMEText(html_content, "html", mime_charset))
    for name in files or []:
        basename = os.path.basename(name)
        with open(name, "rb") as fh:
            part = MIMEApplication(fh.read(), Name=basename)
        part["Content-Disposition"] = f'attachment; filename="{basename}"'
        part["Content-ID"] = f"<{basename}>"
        msg.attach(part)
    for key, value in (custom_headers or {}).items():
        msg[key] = value
    return msg, recipients


def send_email(
    to: str | Iterable[str],
    subject: str,
    html_content: str,
    files: list[str] | None = None,
    dryrun: bool = False,
    cc: str | Iterable[str] | None = None,
    bcc: str | Iterable[str] | None = None,
    mime_subtype: str = "mixed",
    mime_charset: str = "utf-8",
    conn_id: str | None = None,
    custom_headers: dict[str, Any] | None = None,
    from_email: str | None = None,
    **kwargs: Any,
) -> None:
    """Send an HTML email through the node's SMTP server.

    :param dryrun: build the message but send nothing.
    :param from_email: the sender when ``smtp.smtp_mail_from`` is empty.
    :raises EmailError: when the server cannot be reached after the retries, or refuses
        the login, the sender or every recipient.
    """
    smtp = node_options().smtp
    mail_from = smtp.mail_from or from_email
    if not mail_from:
        raise EmailError("no sender: set [smtp] smtp_mail_from or pass from_email")
    msg, recipients = build_mime_message(
        mail_from, to, subject, html_content, files, cc, bcc, mime_subtype, mime_charset,
        custom_headers,
    )  # fmt: skip
    if dryrun:
        log.info("Dry run: not sending an email to %s", recipients)
        return
    user, password = _credentials(smtp, conn_id or "smtp_default")
    try:
        _send(smtp, user, password, mail_from, recipients, msg.as_string())
    except (smtplib.SMTPException, OSError) as exc:
        raise EmailError(
            f"could not send email through {smtp.host}:{smtp.port}: {type(exc).__name__}: {exc}"
        ) from exc
    log.info("Sent an email to %s", recipients)


def _credentials(smtp: SmtpOptions, conn_id: str) -> tuple[str, str]:
    """The connection's login and password when it has both, else the settings'."""
    try:
        connection = Connection.get(conn_id)
    except TradewindError:  # no such connection, or no metastore in this process
        connection = None
    if connection is not None and connection.login and connection.password:
        return connection.login, connection.password
    return smtp.user, smtp.password


def _send(
    smtp: SmtpOptions, user: str, password: str, mail_from: str, to: list[str], text: str
) -> None:
    for attempt in range(1, max(smtp.retry_limit, 1) + 1):
        try:
            server = _connect(smtp)
        except (smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError, ConnectionError):
            if attempt >= smtp.retry_limit:
                raise
            log.info("SMTP connection attempt %s failed; trying again", attempt)
            continue
        try:
            if smtp.starttls and not smtp.ssl:
                server.starttls(context=ssl.create_default_context())
            if user and password:
                server.login(user, password)
            server.sendmail(mail_from, to, text)
        finally:
            server.quit()
        return


def _connect(smtp: SmtpOptions) -> smtplib.SMTP:
    if smtp.ssl:
        return smtplib.SMTP_SSL(
            smtp.host, smtp.port, timeout=smtp.timeout, context=ssl.create_default_context()
        )
    return smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout)
