"""Effective priority weights under each weight rule."""

from __future__ import annotations

import pytest
from policy_dags import make_dag

from cluster.errors import DagDefinitionError
from cluster.policy import effective_priority_weights

# a → b → d, a → c → d: a diamond; weights 1, 2, 3, 4
EDGES = [("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")]
WEIGHTS = {"a": 1, "b": 2, "c": 3, "d": 4}


def weights_for(rule: str) -> dict[str, int]:
    options = {t: {"priority_weight": w, "weight_rule": rule} for t, w in WEIGHTS.items()}
    return effective_priority_weights(make_dag(EDGES, options=options))


def test_downstream_adds_every_descendant_once() -> None:
    assert weights_for("downstream") == {"a": 10, "b": 6, "c": 7, "d": 4}


def test_upstream_adds_every_ancestor_once() -> None:
    assert weights_for("upstream") == {"a": 1, "b": 3, "c": 4, "d": 10}


def test_absolute_is_the_own_weight() -> None:
    assert weights_for("absolute") == WEIGHTS


def test_unknown_weight_rule_is_a_definition_error() -> None:
    with pytest.raises(DagDefinitionError, match="weight_rule"):
        weights_for("sideways")
