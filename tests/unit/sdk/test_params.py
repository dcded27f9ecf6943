"""Params: JSON-schema declarations, defaults, and validation at trigger time."""

from __future__ import annotations

import pytest

from cluster.errors import DagDefinitionError, ParamValidationError
from cluster.operators.empty import EmptyOperator
from cluster.sdk import DAG, Param, ParamsDict
from cluster.sdk.params import validate_params

DECLARED = {
    "x": Param(5, type="integer", minimum=0, maximum=10, description="count").dump(),
    "mode": Param("a", enum=["a", "b"]).dump(),
    "required": Param(type="string").dump(),
}


def test_dump_is_a_json_schema_with_default_and_description() -> None:
    assert DECLARED["x"] == {
        "type": "integer",
        "minimum": 0,
        "maximum": 10,
        "default": 5,
        "description": "count",
    }
    assert "default" not in DECLARED["required"]


def test_validate_merges_defaults_and_conf() -> None:
    result = validate_params(DECLARED, {"required": "r", "extra": 1})
    assert result == {"x": 5, "mode": "a", "required": "r", "extra": 1}


@pytest.mark.parametrize(
    ("conf", "message"),
    [
        ({"required": "r", "x": 11}, "param 'x'"),
        ({"required": "r", "x": "5"}, "param 'x'"),
        ({"required": "r", "mode": "c"}, "param 'mode'"),
        ({}, "param 'required'.*no default"),
    ],
)
def test_validate_rejects_bad_conf(conf: dict, message: str) -> None:
    with pytest.raises(ParamValidationError, match=message):
        validate_params(DECLARED, conf)


def test_validate_accepts_param_objects() -> None:
    assert validate_params({"p": Param(1, type="integer")}, {}) == {"p": 1}


def test_params_dict_reads_values_and_keeps_params() -> None:
    params = ParamsDict({"a": Param(1, type="integer"), "b": "plain"})
    assert params["a"] == 1 and params["b"] == "plain"
    assert isinstance(params.get_param("a"), Param)
    assert params.dump() == {"a": {"type": "integer", "default": 1}, "b": {"default": "plain"}}


def test_invalid_default_is_a_definition_error() -> None:
    with DAG("d", params={"x": Param("no", type="integer")}) as d:
        EmptyOperator(task_id="t")
    with pytest.raises(DagDefinitionError, match="invalid default"):
        d.validate()


def test_task_params_override_dag_params_in_validation() -> None:
    with DAG("d", params={"x": Param(1, type="integer")}) as d:
        EmptyOperator(task_id="t", params={"x": 2})
    d.validate()
    assert d.get_task("t").params["x"] == 2
