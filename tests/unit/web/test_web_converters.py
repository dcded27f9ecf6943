"""The ``int`` path converter's pattern stops at its ``max``."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from cluster.web.converters import at_most


@given(
    limit=st.integers(min_value=0, max_value=2**63),
    near=st.integers(min_value=-1000, max_value=1000),
    anywhere=st.integers(min_value=0),
)
def test_the_pattern_matches_exactly_the_numbers_up_to_the_limit(
    limit: int, near: int, anywhere: int
) -> None:
    for value in (max(0, limit + near), anywhere):
        assert bool(re.fullmatch(at_most(limit), str(value))) == (value <= limit)


def test_leading_zeros_and_signs() -> None:
    assert re.fullmatch(at_most(2147483647), "0000000007")
    assert not re.fullmatch(at_most(2147483647), "-1")
    assert not re.fullmatch(at_most(9), "10")
