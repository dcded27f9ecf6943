"""The values of a mapped task's instances, read from the metastore only when used.

``xcom_pull`` of a mapped task (and an XComArg over one) gives a
:class:`LazyXComSequence` instead of a list, as Airflow's ``LazyXComSelectSequence``:
its length is one ``COUNT``, and the first element read loads every value in one
query, in map-index order (never one query per value). It compares equal to a list
with the same values and is JSON-serializable through ``list(...)``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from typing import Any, overload

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from cluster.metastore.engine import READ_ONLY
from cluster.metastore.models import XCom

SessionFactory = Callable[[], sessionmaker[Session]]


class LazyXComSequence(Sequence[Any]):
    """The ``key`` XComs of ``task_id``'s mapped instances (``map_index >= 0``), in order.

    :param map_indexes: only these instances (a range or list); ``None``: all of them.
    """

    def __init__(
        self,
        sessions: SessionFactory,
        *,
        dag_id: str,
        run_id: str,
        task_id: str,
        key: str,
        map_indexes: Sequence[int] | None = None,
    ) -> None:
        self._sessions = sessions
        self._where = [
            XCom.dag_id == dag_id,
            XCom.run_id == run_id,
            XCom.task_id == task_id,
            XCom.key == key,
        ]
        if map_indexes is None:
            self._where.append(XCom.map_index >= 0)
        else:
            self._where.append(XCom.map_index.in_(list(map_indexes)))
        self._values: list[Any] | None = None
        self._length: int | None = None

    def _load(self) -> list[Any]:
        if self._values is None:
            query = select(XCom.value).where(*self._where).order_by(XCom.map_index)
            with self._sessions()() as session:
                connection = session.connection(execution_options=READ_ONLY)
                texts = connection.execute(query).scalars().all()
            self._values = [None if t is None else json.loads(t) for t in texts]
        return self._values

    def __len__(self) -> int:
        if self._values is not None:
            return len(self._values)
        if self._length is None:
            query = select(func.count()).select_from(XCom).where(*self._where)
            with self._sessions()() as session:
                connection = session.connection(execution_options=READ_ONLY)
                self._length = int(connection.execute(query).scalar() or 0)
        return self._length

    @overload
    def __getitem__(self, index: int) -> Any: ...

    @overload
    def __getitem__(self, index: slice) -> list[Any]: ...

    def __getitem__(self, index: int | slice) -> Any:
        return self._load()[index]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._load())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence) and not isinstance(other, str):
            return list(self) == list(other)
        return NotImplemented

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled (rendered fields sent to the executor, deep copies) as a plain list."""
        return (list, (self._load(),))

    def __hash__(self) -> int:
        return id(self)

    def __repr__(self) -> str:
        return f"LazyXComSequence({self._load()!r})"
