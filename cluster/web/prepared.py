"""Big, fixed statements compiled to SQL text once, so running them costs no tree walk.

SQLAlchemy looks each statement up in its compiled cache by a key it computes by
walking the whole expression tree on *every* execution. For the hot statements of the
busiest views (the DAG list's stamp, the DAGs page's hundred OR-ed ranges) that walk
cost 0.6 to 0.9 ms of CPU per request, as much as everything else the API does for a
reused answer. :func:`prepared` compiles such a statement once per dialect into a
:func:`~sqlalchemy.text` clause with the same typed parameters and result columns,
whose cache key is its text.

What can go wrong: "expanding" parameters (``IN`` lists) are only rendered at
execution, so such statements are refused with :class:`ValueError`; and a statement
must be built once and kept (``lru_cache``), or nothing is saved.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from sqlalchemy import CursorResult, TextualSelect, bindparam, column, text
from sqlalchemy.engine import Dialect
from sqlalchemy.engine.interfaces import BindTyping
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import Select

#: a SELECT of any columns
AnySelect = Select[*tuple[Any, ...]]
#: compiled statements kept per process (each a few kB of SQL)
MAX_PREPARED = 256


def execute(
    session: Session, statement: AnySelect, params: Mapping[str, Any] | None = None
) -> CursorResult[*tuple[Any, ...]]:
    """Run ``statement`` (built once and kept) on the session's connection, prepared."""
    connection = session.connection()
    return connection.execute(prepared(statement, connection.dialect), params or {})


@lru_cache(maxsize=MAX_PREPARED)
def prepared(statement: AnySelect, dialect: Dialect) -> TextualSelect:
    """``statement`` as SQL text for ``dialect`` (an engine's, which is part of the
    cache key), with its parameters (bound constants keep their values) and its result
    columns typed as in ``statement``.

    :raises ValueError: for a statement with an expanding parameter.
    """
    named = copy.copy(dialect)  # keeps what the engine learnt of its server (MariaDB, version)
    named.paramstyle, named.positional = "named", False
    # no casts after the names (PostgreSQL's ``:name::VARCHAR`` would not parse as
    # text): executing the text renders them, from the parameters' types. The flag
    # SQLAlchemy derives from bind_typing is memoized on the dialect: forget the copy's
    named.bind_typing = BindTyping.NONE
    vars(named).pop("_bind_typing_render_casts", None)
    compiled = statement.compile(dialect=named)
    params = {}
    for parameter, name in compiled.bind_names.items():
        if parameter.expanding:
            raise ValueError(f"parameter {name!r} expands at execution: run it as it is")
        value = None if parameter.required else parameter.effective_value
        params[name] = bindparam(name, value, type_=parameter.type, required=parameter.required)
    columns = [
        column(c.key or f"column_{i}", c.type) for i, c in enumerate(statement.selected_columns)
    ]
    return text(compiled.string).bindparams(*params.values()).columns(*columns)
