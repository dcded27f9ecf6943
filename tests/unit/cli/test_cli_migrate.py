"""``tradewind migrate-from-airflow``: bad arguments end in one line (the copying itself is
tested on real Airflow metastores in tests/integration/test_migrate_from_airflow.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from cryptography.fernet import Fernet

Main = Callable[..., Any]
KEY = Fernet.generate_key().decode()


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["sqlite:////tmp/airflow.db", "--fernet-key", KEY], "unsupported database 'sqlite'"),
        (["not a url", "--fernet-key", KEY], "not a database URL"),
        (["mysql://u:p@127.0.0.1:1/airflow", "--fernet-key", "short"], "not a valid Fernet key"),
        (["postgresql://u:p@127.0.0.1:1/airflow", "--fernet-key", KEY], "cannot read the Airflow"),
    ],
)
def test_bad_arguments_fail_in_one_line(
    main: Main, migrated: None, args: list[str], says: str
) -> None:
    result = main("migrate-from-airflow", *args)
    assert result.is_one_line_error and says in result.err, result.err
