"""Templates render with Airflow's context, filters, macros, files and nesting."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import jinja2
import jinja2.nativetypes
import jinja2.sandbox
import pytest

from cluster.errors import TemplateError
from cluster.operators.bash import BashOperator
from cluster.sdk import DAG, BaseOperator, Connection, Variable, templating
from cluster.sdk.context import RunInfo, build_context, execution_context, get_current_context
from cluster.sdk.templating import render_template_fields, template_env
from cluster.sdk.testing import InMemoryRuntime, InMemoryTaskInstance

LOGICAL = datetime(2024, 3, 5, 6, 7, 8, tzinfo=UTC)


class Templated(BaseOperator):
    template_fields = ("value",)
    template_ext = (".sql",)

    def __init__(self, *, value: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.value = value


def context_for(task: BaseOperator, **run: Any) -> dict[str, Any]:
    info = RunInfo(
        dag_id=task.dag_id,
        run_id="scheduled__2024-03-05",
        logical_date=LOGICAL,
        data_interval_start=LOGICAL,
        data_interval_end=datetime(2024, 3, 6, tzinfo=UTC),
        run_type="scheduled",
        conf=run.get("conf", {}),
    )
    ti = InMemoryTaskInstance(task.dag_id, task.task_id, info.run_id)
    return build_context(
        dag=task.dag,
        task=task,
        ti=ti,
        dag_run=info,
        prev_data_interval_start_success=datetime(2024, 3, 4, tzinfo=UTC),
        prev_data_interval_end_success=datetime(2024, 3, 5, tzinfo=UTC),
    )


def render(value: Any, dag: DAG | None = None, **run: Any) -> Any:
    with dag or DAG("d", params={"p": 1}):
        task = Templated(task_id="t", value=value)
    return render_template_fields(task, context_for(task, **run))["value"]


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ ds }}", "2024-03-05"),
        ("{{ ds_nodash }}", "20240305"),
        ("{{ ts }}", "2024-03-05T06:07:08+00:00"),
        ("{{ ts_nodash }}", "20240305T060708"),
        ("{{ ts_nodash_with_tz }}", "20240305T060708+0000"),
        ("{{ logical_date.year }}", "2024"),
        ("{{ execution_date.month }}", "3"),
        ("{{ data_interval_start | ds }}", "2024-03-05"),
        ("{{ data_interval_end | ds_nodash }}", "20240306"),
        ("{{ data_interval_end | ts }}", "2024-03-06T00:00:00+00:00"),
        ("{{ data_interval_end | ts_nodash }}", "20240306T000000"),
        ("{{ run_id }}", "scheduled__2024-03-05"),
        ("{{ dag.dag_id }}/{{ task.task_id }}", "d/t"),
        ("{{ ti.task_id }}/{{ task_instance.run_id }}", "t/scheduled__2024-03-05"),
        ("{{ dag_run.run_type }}", "scheduled"),
        ("{{ params.p }}", "1"),
        ("{{ prev_data_interval_start_success | ds }}", "2024-03-04"),
        ("{{ prev_data_interval_end_success | ds }}", "2024-03-05"),
        ("{{ task_instance_key_str }}", "d__t__20240305"),
        ("{{ test_mode }}", "False"),
        ("{{ macros.ds_add(ds, 7) }}", "2024-03-12"),
        ("{{ macros.ds_format(ds, '%Y-%m-%d', '%d/%m/%y') }}", "05/03/24"),
        ("{{ macros.datetime(2020, 1, 2).day }}", "2"),
        ("{{ (macros.timedelta(days=1)).days }}", "1"),
        ("{{ macros.uuid.UUID(int=0) }}", "00000000-0000-0000-0000-000000000000"),
        ("{{ macros.time.time() > 0 }}", "True"),
        ("{{ 0 <= macros.random() < 1 }}", "True"),
        ("{% do params.update({'q': 2}) %}{{ params.q }}", "2"),
    ],
)
def test_context_variables_and_macros(template: str, expected: str) -> None:
    assert render(template) == expected


def test_the_same_instant_in_another_zone_keeps_its_own_date_strings() -> None:
    """Each run's date strings are formatted once per date: an equal datetime (the
    same instant) in another zone, or a naive one, still prints its own."""
    eastern = LOGICAL.astimezone(timezone(timedelta(hours=-5)))
    assert eastern == LOGICAL
    with DAG("zones"):
        task = Templated(task_id="t", value=None)
    printed = []
    for logical in (LOGICAL, eastern, LOGICAL.replace(tzinfo=None), LOGICAL):
        info = RunInfo(
            dag_id="zones",
            run_id="r",
            logical_date=logical,
            data_interval_start=logical,
            data_interval_end=logical,
            run_type="manual",
            conf={},
        )
        context = build_context(dag=task.dag, task=task, ti=None, dag_run=info)
        printed.append((context["ds"], context["ts"], context["ts_nodash_with_tz"]))
    assert printed == [
        ("2024-03-05", "2024-03-05T06:07:08+00:00", "20240305T060708+0000"),
        ("2024-03-05", "2024-03-05T01:07:08-05:00", "20240305T0107080500"),
        ("2024-03-05", "2024-03-05T06:07:08", "20240305T060708"),
        ("2024-03-05", "2024-03-05T06:07:08+00:00", "20240305T060708+0000"),
    ]


def test_conf_overrides_params() -> None:
    assert render("{{ params.p }}", conf={"p": 9}) == "9"


def test_var_and_conn_go_through_the_runtime(runtime: InMemoryRuntime) -> None:
    Variable.set("plain", "v1")
    Variable.set("doc", {"k": [1, 2]}, serialize_json=True)
    runtime.connections["db"] = Connection("db", "postgres", host="h", port=5432, login="u")
    assert render("{{ var.value.plain }}-{{ var.json.doc.k[1] }}") == "v1-2"
    assert render("{{ var.value.get('nope', 'dflt') }}") == "dflt"
    assert render("{{ conn.db.host }}:{{ conn.db.port }}") == "h:5432"


def test_nested_structures_render_recursively() -> None:
    nested = SimpleNamespace(template_fields=("inner",), inner="{{ ds }}")
    value = {"a": ["{{ ds }}", ("{{ ds_nodash }}", 3)], "b": {"c": "x{{ params.p }}"}, "n": nested}
    result = render(value)
    assert result["a"] == ["2024-03-05", ("20240305", 3)]
    assert result["b"] == {"c": "x1"} and result["n"].inner == "2024-03-05"


def test_template_ext_reads_a_file_next_to_the_dag(tmp_path: Path) -> None:
    (tmp_path / "query.sql").write_text("select '{{ ds }}'")
    with DAG("d", full_filepath=str(tmp_path / "dag.py")) as d:
        pass
    assert render("query.sql", dag=d) == "select '2024-03-05'"


def test_template_searchpath_and_missing_file(tmp_path: Path) -> None:
    (tmp_path / "cmd.sh").write_text("echo {{ ds_nodash }}")
    with DAG("d", template_searchpath=str(tmp_path)):
        op = BashOperator(task_id="b", bash_command="cmd.sh")
        missing = BashOperator(task_id="m", bash_command="nope.sh")
    assert render_template_fields(op, context_for(op))["bash_command"] == "echo 20240305"
    with pytest.raises(TemplateError, match=r"nope\.sh"):
        render_template_fields(missing, context_for(missing))


def test_undefined_variable_is_an_error_like_airflow() -> None:
    with pytest.raises(TemplateError, match=r"'t'.*'value'.*undefined"):
        render("{{ no_such_thing }}")


def test_dag_can_choose_lenient_undefined_and_user_macros() -> None:
    dag = DAG(
        "d",
        template_undefined=jinja2.Undefined,
        user_defined_macros={"twice": lambda x: x * 2},
        user_defined_filters={"shout": str.upper},
    )
    assert render("[{{ missing }}]{{ twice(2) }}{{ 'a' | shout }}", dag=dag) == "[]4A"


def test_native_rendering() -> None:
    dag = DAG("d", render_template_as_native_obj=True)
    assert render("{{ [1, 2] }}", dag=dag) == [1, 2]


def test_render_returns_only_template_fields_and_sets_them() -> None:
    with DAG("d"):
        op = BashOperator(task_id="b", bash_command="echo {{ ds }}", env={"X": "{{ ds_nodash }}"})
    rendered = render_template_fields(op, context_for(op))
    assert rendered == {"bash_command": "echo 2024-03-05", "env": {"X": "20240305"}, "cwd": None}
    assert op.bash_command == "echo 2024-03-05"
    json.dumps(rendered)  # the runner stores it


def test_execution_context_is_scoped() -> None:
    ctx = {"marker": 1}
    with execution_context(ctx):
        assert get_current_context() is ctx
    with pytest.raises(Exception, match="no context was found"):
        get_current_context()


@pytest.mark.parametrize(
    "text",
    ["true", "echo done\n", "two\n\n", "a\r\nb", "100", "", "{ not a block }", "50%", "# note"],
)
@pytest.mark.parametrize(
    "kwargs",
    [{}, {"keep_trailing_newline": True}, {"variable_start_string": "[["}],
    ids=["default", "keep-newline", "custom-delimiters"],
)
def test_plain_text_renders_as_jinja_would(text: str, kwargs: dict[str, Any]) -> None:
    """Text without Jinja markers skips Jinja; the result must not tell the difference."""
    dag = DAG("d", jinja_environment_kwargs=kwargs)
    expected = jinja2.sandbox.SandboxedEnvironment(**kwargs).from_string(text).render()
    assert render(text, dag=dag) == expected
    assert render(text, dag=DAG("n", render_template_as_native_obj=True)) == (
        jinja2.nativetypes.NativeEnvironment().from_string(text).render()
    )


def test_a_dag_renders_with_one_environment_and_each_template_compiled_once() -> None:
    dag = DAG("d", params={"p": 1})
    first = render("{{ params.p }}-{{ ds }}", dag=dag)
    with dag:
        task = Templated(task_id="u", value="{{ params.p }}-{{ ds }}")
    env = template_env(dag)
    compiled = templating._COMPILED[env]
    assert template_env(dag) is env and list(compiled) == ["{{ params.p }}-{{ ds }}"]
    again = render_template_fields(task, context_for(task))["value"]
    assert first == again == "1-2024-03-05" and len(compiled) == 1
