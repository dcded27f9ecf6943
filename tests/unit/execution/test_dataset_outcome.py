"""What a successful try reports of its outlets: Airflow's three ways to set an event's
extra (yield Metadata, outlet_events in the context, a classic operator's post_execute),
events emitted through an alias, and nothing for a try that does not succeed."""

from __future__ import annotations

from typing import Any

from cluster.errors import TaskSkipped
from cluster.execution.execute import execute_try
from cluster.operators.bash import BashOperator
from cluster.operators.python import PythonOperator
from cluster.sdk import DAG, Dataset, DatasetAlias, Metadata, task
from cluster.sdk.testing import InMemoryTaskInstance, make_context

DS = Dataset("s3://output/1.txt")


class _Ti(InMemoryTaskInstance):
    def pushed_xcoms(self) -> list[tuple[str, Any]]:
        return []

    def skipped_downstream(self) -> list[str]:
        return []


def _events(operator: Any) -> list[dict[str, Any]]:
    ti = _Ti(operator.dag_id, operator.task_id)
    outcome = execute_try(operator, make_context(operator, ti=ti), timeout=None, xcom_max_size=1000)
    return outcome.dataset_events


def test_extra_by_yield_by_context_and_by_post_execute() -> None:
    with DAG("d"):

        @task(outlets=[DS])
        def by_yield():
            yield Metadata(DS, {"hi": "bye"})

        @task(outlets=[DS])
        def by_context(*, outlet_events=None):
            outlet_events[DS].extra = {"hi": "bye"}

        def post(context: dict[str, Any], result: Any) -> None:
            context["outlet_events"][DS].extra = {"hi": "bye"}

        classic = BashOperator(task_id="classic", outlets=[DS], bash_command=":", post_execute=post)
        yielded, from_context = by_yield(), by_context()
    expected = [{"uri": DS.uri, "extra": {"hi": "bye"}, "alias": None}]
    assert _events(yielded.operator) == expected
    assert _events(from_context.operator) == expected
    assert _events(classic) == expected


def test_alias_events_and_no_event_without_success() -> None:
    alias = DatasetAlias("al")

    def through_alias(*, outlet_events: Any) -> None:
        outlet_events[alias].add(Dataset("s3://x/resolved"), extra={"k": 1})

    def skip() -> None:
        raise TaskSkipped("no")

    with DAG("d"):
        emitting = PythonOperator(task_id="a", python_callable=through_alias, outlets=[alias])
        skipped = PythonOperator(task_id="s", python_callable=skip, outlets=[DS])
    assert _events(emitting) == [{"uri": "s3://x/resolved", "extra": {"k": 1}, "alias": "al"}]
    assert _events(skipped) == []
