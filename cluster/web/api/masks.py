"""Airflow's ``update_mask``: a PATCH changes only the fields the mask names.

As Airflow's ``extract_update_mask_data``, each name must be a field the operation may
change and must be in the body; anything else is a 400 naming it. Names may also be
given comma-separated in one value (``update_mask=slots,description``).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from cluster.web.problems import ApiProblem


def masked(
    update_mask: list[str] | None, given: Mapping[str, Any], *, updatable: Collection[str]
) -> dict[str, Any]:
    """The fields of ``given`` (the body's, as sent) a PATCH changes: all of them without a
    mask, else only those it names.

    :raises ApiProblem: 400 for a name that is unknown, cannot change, or is not in the body.
    """
    if not update_mask:
        return dict(given)
    chosen: dict[str, Any] = {}
    for item in update_mask:
        for name in (n.strip() for n in item.split(",")):
            if name not in updatable or name not in given:
                raise ApiProblem(400, f"'{name}' is unknown or cannot be updated.")
            chosen[name] = given[name]
    return chosen
