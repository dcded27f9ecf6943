"""``order_by`` as Airflow's API takes it: a field name, ``-`` in front for descending.

Airflow sorts by any attribute of the model (``-execution_date``, ``start_date``,
``dag_run_id``); each list here names the fields it sorts by and the column behind
each, so a name it does not know is a 400 that lists the ones it does, never a 500.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import ColumnElement

from cluster.web.problems import ApiProblem

Columns = Mapping[str, Any]


def order_clauses(
    order_by: str | None, columns: Columns, *, default: str, tiebreak: Any
) -> list[ColumnElement[Any]]:
    """``ORDER BY`` clauses for ``order_by`` (``default`` when not given), then ``tiebreak``
    ascending, so pages never overlap.

    :raises ApiProblem: 400 when the field is not one of ``columns``.
    """
    name = (order_by or default).strip()
    descending = name.startswith("-")
    field = name.removeprefix("-")
    column = columns.get(field)
    if column is None:
        allowed = ", ".join(sorted(columns))
        raise ApiProblem(
            400,
            f"Ordering with '{field}' is disallowed or the attribute does not exist on "
            f"the model; order by one of: {allowed} (prefix '-' for descending)",
        )
    return [column.desc() if descending else column.asc(), tiebreak.asc()]
