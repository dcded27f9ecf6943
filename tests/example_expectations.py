"""The final state of every task of every example DAG after one manual run with
default conf: ``EXPECTED[dag_id][task_id]`` is a ``TaskState`` value.

The integration tests run each example DAG and compare; a unit test checks that the
task ids here match the DAG files exactly.
"""

from __future__ import annotations

S, K, F, U = "success", "skipped", "failed", "upstream_failed"

EXPECTED: dict[str, dict[str, str]] = {
    "tutorial": {"print_date": S, "sleep": S, "templated": S},
    "tutorial_taskflow_api": {"extract": S, "transform": S, "load": S},
    "example_bash_operator": {
        "runme_0": S,
        "runme_1": S,
        "runme_2": S,
        "run_after_loop": S,
        "also_run_this": S,
        "this_will_skip": K,
        "run_this_last": K,
    },
    "example_branch_operator": {
        "run_this_first": S,
        "branching": S,
        "branch_a": S,
        "follow_branch_a": S,
        "branch_b": K,
        "follow_branch_b": K,
        "branch_c": K,
        "follow_branch_c": K,
        "join": S,
        "report": S,
    },
    "example_short_circuit": {
        "condition_is_true": S,
        "true_1": S,
        "true_2": S,
        "condition_is_false": S,
        "false_1": K,
        "false_2": K,
        "task_1": S,
        "task_2": S,
        "short_circuit": S,
        "task_3": S,
        "task_4": K,
        "task_5": S,
        "task_6": K,
        "task_7": S,
    },
    "example_task_group": {
        "start": S,
        "section_1.task_1": S,
        "section_1.task_2": S,
        "section_1.task_3": S,
        "section_2.task_1": S,
        "section_2.inner_section_2.task_2": S,
        "section_2.inner_section_2.task_3": S,
        "section_2.inner_section_2.task_4": S,
        "increments.add_one": S,
        "increments.add_one__1": S,
        "check": S,
        "end": S,
    },
    "example_trigger_rules": {
        "ok": S,
        "fail": F,
        "after_fail": U,
        "after_after_fail": U,
        "cleanup": S,
        "alert": S,
        "all_failed": S,
        "none_failed": S,
        "one_success": S,
        "always": S,
    },
    "example_xcom": {
        "push": S,
        "push_by_returning": S,
        "puller": S,
        "split": S,
        "add": S,
        "bash_push": S,
        "bash_pull": S,
    },
    "example_params": {"greet": S, "check_params": S},
    "example_sensors": {
        "poke_python": S,
        "reschedule_python": S,
        "wait_zero": S,
        "wait_until_interval_end": S,
        "any_day": S,
        "make_file": S,
        "file_exists": S,
        "bash_check": S,
        "decorated_sensor": S,
        "done": S,
    },
    "example_retries": {"flaky": S, "after_retry": S},
}
