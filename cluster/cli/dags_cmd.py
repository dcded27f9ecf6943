"""``tradewind dags …``: list, inspect, trigger, pause, test and backfill DAGs.

Listings read the metastore (the serialized form), never DAG files; ``reserialize``
processes the DAGs folder now, and ``test`` imports the file to run it in-process.
Each subcommand lives in the module of what it needs, imported when it runs: one
run's state and the DAG listing, which scripts poll and which read through the database
driver alone (:mod:`~cluster.cli.state_cmd`, :mod:`~cluster.cli.dags_list_cmd`), other
listings (:mod:`~cluster.cli.dags_query_cmd`), acting through :mod:`cluster.actions`
(:mod:`~cluster.cli.dags_action_cmd`), importing DAG files
(:mod:`~cluster.cli.dags_file_cmd`).
"""

from __future__ import annotations

from cluster.cli.lazy import Lazy, LazyGroup

STATE, LIST, QUERY, ACTION, FILE = (
    "cluster.cli.state_cmd",
    "cluster.cli.dags_list_cmd",
    "cluster.cli.dags_query_cmd",
    "cluster.cli.dags_action_cmd",
    "cluster.cli.dags_file_cmd",
)

dags_group = LazyGroup(
    "dags",
    help="Manage DAGs.",
    lazy={
        "backfill": Lazy(
            ACTION,
            "backfill",
            "Create the runs of every interval from START to END; the scheduler runs them.",
        ),
        "delete": Lazy(ACTION, "delete", "Delete every record of a DAG (its file stays)."),
        "list": Lazy(LIST, "list_dags", "Every active DAG with its schedule and task count."),
        "list-import-errors": Lazy(
            QUERY, "list_import_errors", "DAG files that failed to import, with the reason."
        ),
        "list-runs": Lazy(
            QUERY,
            "list_runs",
            "The DAG's runs, newest first (DAG_ID or, as in Airflow, -d DAG_ID).",
        ),
        "pause": Lazy(ACTION, "pause", "Pause a DAG: no new scheduled runs, no new tasks queued."),
        "reserialize": Lazy(
            FILE,
            "reserialize",
            "Process the DAGs folder now and store every DAG's serialized form.",
        ),
        "show": Lazy(
            ACTION,
            "show",
            "The DAG's structure from its serialized form, as JSON or a Graphviz graph.",
        ),
        "state": Lazy(
            STATE, "dag_run_state", "The state of one run (by run id or by logical date)."
        ),
        "test": Lazy(
            FILE,
            "test",
            "Run one whole DAG run in this process and print every task's state and duration.",
        ),
        "trigger": Lazy(
            ACTION,
            "trigger",
            "Create a manual run; the scheduler runs it (a paused DAG's run waits).",
        ),
        "unpause": Lazy(ACTION, "unpause", "Unpause a DAG."),
    },
)
