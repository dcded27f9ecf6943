"""The ``trigger`` table of deferral (migration 0006).

A deferred try's trigger waits here until a triggerer claims it (``triggerer_id``,
``claimed_at``: a compare-and-set, so one live triggerer runs each trigger). Apart from
:mod:`cluster.metastore.models` to keep that module small; it re-exports the model.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String, Table, Text
from sqlalchemy.orm import Mapped, mapped_column

from cluster.metastore.base import MYSQL_TABLE_ARGS, Base
from cluster.metastore.coltypes import UtcDateTime, utcnow


class Trigger(Base):
    """One trigger of one or more deferred task instances.

    ``kwargs`` is the JSON of the trigger's ``serialize()[1]``, Fernet-encrypted with
    the cluster key: a trigger's arguments may hold credentials, as Airflow 2.9+ assumes.
    """

    __tablename__ = "trigger"
    __table_args__ = (Index("idx_trigger_triggerer_id", "triggerer_id"), MYSQL_TABLE_ARGS)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    classpath: Mapped[str] = mapped_column(String(1000))
    kwargs: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    #: ``component.id`` of the triggerer running it; NULL while nobody has claimed it
    triggerer_id: Mapped[int | None] = mapped_column(Integer)
    claimed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


TRIGGER: Table = Trigger.__table__  # type: ignore[assignment]
