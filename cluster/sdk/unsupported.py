"""Airflow authoring names Tradewind does not support yet, and the feature each belongs to.

``from cluster.sdk import Dataset`` then fails with one error naming the feature,
instead of an ``ImportError`` that reads like a typo; the DAG file's import error
says which line uses it. A name leaves this table when its feature lands.
"""

from __future__ import annotations

from cluster.errors import FeatureNotSupported

#: Airflow name → the feature it belongs to
NOT_YET: dict[str, str] = {}  # deferral, the last entry, landed (issue 15)


def unsupported(name: str) -> FeatureNotSupported:
    """The error for using Airflow's ``name``."""
    return FeatureNotSupported(
        f"{name} belongs to {NOT_YET[name]}, an Airflow feature Tradewind does not support yet"
    )
