"""The process environment user code runs in, set up once per process from its settings.

Airflow's: the DAG folder and the plugins folder are on ``sys.path`` and the plugins
are loaded (their timetables and macros registered), in every process that imports
DAG files, runs tasks or computes schedules. Task code also finds the node settings it
needs (SMTP, where virtualenvs live) through :mod:`cluster.sdk.node`, since the SDK
never reads the configuration itself.
"""

from __future__ import annotations

from cluster.config import Settings
from cluster.sdk import airflow_compat
from cluster.sdk.node import NodeOptions, SmtpOptions, set_node_options
from cluster.sdk.plugins import Plugins, load_plugins, prepare_syspath

#: the folder under ``$TRADEWIND_HOME`` holding one virtualenv per requirements set
VENVS_FOLDER = "venvs"


def node_options_from(settings: Settings) -> NodeOptions:
    smtp = settings.smtp
    return NodeOptions(
        venvs_folder=settings.home / VENVS_FOLDER,
        smtp=SmtpOptions(
            host=smtp.smtp_host,
            port=smtp.smtp_port,
            starttls=smtp.smtp_starttls,
            ssl=smtp.smtp_ssl,
            user=smtp.smtp_user,
            password=smtp.smtp_password,
            mail_from=smtp.smtp_mail_from,
            timeout=smtp.smtp_timeout,
            retry_limit=smtp.smtp_retry_limit,
        ),
        default_deferrable=settings.operators.default_deferrable,
    )


def prepare_user_code(settings: Settings) -> Plugins:
    """Set up this process for user code; idempotent: ``sys.path``, the ``airflow``
    import hook (``core.airflow_compat``), node options, plugins. A plugin that fails to import is
    logged and listed in the result's ``errors``, never raised."""
    prepare_syspath(settings.core.dags_folder)
    if settings.core.airflow_compat:
        airflow_compat.install()  # before the plugins: they may import airflow too
    set_node_options(node_options_from(settings))
    return load_plugins(settings.core.plugins_folder)
