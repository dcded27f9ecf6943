"""``tradewind tasks …``: list, test, run, clear, render and inspect task instances.

Each subcommand lives in the module of what it needs, imported when it runs: one
instance's state, which scripts poll (:mod:`~cluster.cli.state_cmd`), listings
(:mod:`~cluster.cli.tasks_query_cmd`), acting through :mod:`cluster.actions`
(:mod:`~cluster.cli.tasks_action_cmd`), running a task (:mod:`~cluster.cli.tasks_run_cmd`).
"""

from __future__ import annotations

from cluster.cli.lazy import Lazy, LazyGroup

STATE, QUERY, ACTION, RUN = (
    "cluster.cli.state_cmd",
    "cluster.cli.tasks_query_cmd",
    "cluster.cli.tasks_action_cmd",
    "cluster.cli.tasks_run_cmd",
)

tasks_group = LazyGroup(
    "tasks",
    help="Manage task instances.",
    lazy={
        "clear": Lazy(ACTION, "clear", "Clear task instances so the scheduler runs them again."),
        "list": Lazy(ACTION, "list_tasks", "The DAG's task ids (from its serialized form)."),
        "render": Lazy(
            RUN, "render", "Print the task's template fields rendered for a logical date."
        ),
        "run": Lazy(
            RUN,
            "run",
            "Run one task instance now, in a pool process as the scheduler runs it, and record it.",
        ),
        "state": Lazy(STATE, "task_instance_state_command", "The state of one task instance."),
        "states-for-dag-run": Lazy(
            QUERY,
            "states_for_dag_run",
            "Every task instance of one run with its state, try and times.",
        ),
        "test": Lazy(
            RUN, "test", "Run one task in this process, ignoring dependencies; nothing is recorded."
        ),
    },
)
