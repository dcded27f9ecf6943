"""The node settings task code reads: where virtualenvs live and which SMTP server to use.

The SDK never reads the configuration itself (a DAG file must import light, and nothing
but the process entry point reads the environment). The process that runs tasks
installs these with :func:`set_node_options`, from its ``Settings``; without that (a
unit test, a script) the defaults below apply: Airflow's SMTP defaults and virtualenvs
under the system's temporary folder.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class SmtpOptions:
    """``[smtp]`` as ``send_email`` uses it (see docs/configuration.md)."""

    host: str = "localhost"
    port: int = 25
    starttls: bool = True
    ssl: bool = False
    user: str = ""
    password: str = field(default="", repr=False)
    mail_from: str = "airflow@example.com"
    timeout: float = 30.0
    retry_limit: int = 5


@dataclass(frozen=True)
class NodeOptions:
    """What task code on this node may need from the node's settings."""

    #: ``$TRADEWIND_HOME/venvs``: one virtualenv per requirements set, shared by the
    #: pool processes of the node
    venvs_folder: Path = field(
        default_factory=lambda: Path(tempfile.gettempdir()) / "tradewind-venvs"
    )
    smtp: SmtpOptions = field(default_factory=SmtpOptions)
    #: ``operators.default_deferrable``: ``deferrable=`` when a DAG omits it
    default_deferrable: bool = False


class _Holder:
    options: NodeOptions = NodeOptions()


def set_node_options(options: NodeOptions) -> None:
    """Install this process's node options (the process entry point calls it once)."""
    _Holder.options = options


def node_options() -> NodeOptions:
    return _Holder.options
