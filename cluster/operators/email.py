"""``EmailOperator``: send an HTML email through the node's SMTP server (``[smtp]``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cluster.sdk.baseoperator import BaseOperator
from cluster.sdk.email import send_email


class EmailOperator(BaseOperator):
    """Send ``html_content`` to ``to`` (and ``cc``, ``bcc``), with ``files`` attached.

    :param conn_id: the connection whose login and password are used (default
        ``smtp_default``, else ``smtp.smtp_user``/``smtp.smtp_password``).
    :raises EmailError: when the server cannot be reached or refuses the message.
    """

    template_fields: Sequence[str] = ("to", "subject", "html_content", "files")
    template_fields_renderers = {"html_content": "html"}
    template_ext: Sequence[str] = (".html",)
    ui_color = "#e6faf9"

    def __init__(
        self,
        *,
        to: list[str] | str,
        subject: str,
        html_content: str,
        files: list[str] | None = None,
        cc: list[str] | str | None = None,
        bcc: list[str] | str | None = None,
        mime_subtype: str = "mixed",
        mime_charset: str = "utf-8",
        conn_id: str | None = None,
        custom_headers: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.to = to
        self.subject = subject
        self.html_content = html_content
        self.files = files or []
        self.cc = cc
        self.bcc = bcc
        self.mime_subtype = mime_subtype
        self.mime_charset = mime_charset
        self.conn_id = conn_id
        self.custom_headers = custom_headers

    def execute(self, context: dict[str, Any]) -> None:
        send_email(
            self.to,
            self.subject,
            self.html_content,
            files=self.files,
            cc=self.cc,
            bcc=self.bcc,
            mime_subtype=self.mime_subtype,
            mime_charset=self.mime_charset,
            conn_id=self.conn_id,
            custom_headers=self.custom_headers,
        )
