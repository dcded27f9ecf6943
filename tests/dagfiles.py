"""DAG files that tests write: templates with ``@NAME@`` placeholders, filled and written.

Side-effect DAGs name a folder their tasks write into (``@SIDE_EFFECTS@``), sizes
(``@TASKS@``) or commands (``@SLEEP@``); a placeholder left without a value is an error
here, not a DAG that fails later for a reason hard to see.
"""

from __future__ import annotations

import re
from pathlib import Path

PLACEHOLDER = re.compile(r"@([A-Z][A-Z0-9_]*)@")


def dag_source(template: str, **values: object) -> str:
    """``template`` with each ``@NAME@`` replaced by ``str(values["name"])``.

    :raises KeyError: a placeholder has no value.
    """

    def fill(match: re.Match[str]) -> str:
        name = match.group(1).lower()
        if name not in values:
            raise KeyError(f"the DAG template needs a value for @{match.group(1)}@")
        return str(values[name])

    return PLACEHOLDER.sub(fill, template)


def write_dag(path: Path, template: str, **values: object) -> Path:
    """Write ``dag_source(template, **values)`` to ``path``; returns ``path``."""
    path.write_text(dag_source(template, **values))
    return path
