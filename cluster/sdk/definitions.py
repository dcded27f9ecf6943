"""Where a DAG or task was written, and the errors that point there.

Definition errors must name the DAG file and line so a user can fix the file
without reading a Tradewind traceback; :func:`user_site` finds the first stack frame
outside the ``cluster`` package.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass

from cluster.errors import DagDefinitionError

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
_SKIPPED_FILES = ("contextlib.py", "functools.py")
_KEY = re.compile(r"^[\w.-]+$")
MAX_KEY_LENGTH = 250


@dataclass(frozen=True)
class Site:
    """A place in a DAG file."""

    filename: str
    lineno: int

    def __str__(self) -> str:
        return f"{self.filename}:{self.lineno}"


def user_site() -> Site:
    """Return the innermost frame that belongs to user code (the DAG file).

    Frames inside the ``cluster`` package and stdlib plumbing such as ``contextlib``
    are skipped, so an error raised deep in the SDK still points at the user's line.
    """
    frame = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not filename.startswith(_PACKAGE_DIR) and not filename.endswith(_SKIPPED_FILES):
            return Site(filename, frame.f_lineno)
        frame = frame.f_back  # type: ignore[assignment]
    return Site("<unknown>", 0)


def definition_error(message: str, site: Site | None = None) -> DagDefinitionError:
    """Build a :class:`DagDefinitionError` whose message starts with ``file:line``."""
    return DagDefinitionError(f"{site or user_site()}: {message}")


def validate_key(key: object, kind: str, site: Site | None = None) -> None:
    """Check a DAG, task or group id like Airflow: letters, digits, ``_ . -``, <= 250 chars.

    :raises DagDefinitionError: naming the bad id.
    """
    if not isinstance(key, str):
        raise definition_error(f"The {kind} must be a string, got {key!r}", site)
    if len(key) > MAX_KEY_LENGTH:
        raise definition_error(
            f"The {kind} {key!r} is longer than {MAX_KEY_LENGTH} characters", site
        )
    if not _KEY.match(key):
        raise definition_error(
            f"The {kind} {key!r} has to be made of alphanumeric characters, dashes, dots "
            "and underscores exclusively",
            site,
        )
