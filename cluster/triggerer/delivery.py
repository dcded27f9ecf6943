"""Writing trigger outcomes: resume the tries that waited, then delete the trigger rows.

All in one transaction per batch, and only for rows the triggerer still holds (locked
first): a triggerer cut off long enough for another to take its rows over writes
nothing for them, and the new owner fires them itself. An event written twice anyway
(a retried commit) resumes a try once: ``triggers.fire`` is a compare-and-set on the
deferred try and its trigger id.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from cluster.metastore import trigger_claims, triggers
from cluster.triggerer.outcomes import FAILURE_ERROR, Failed, Fired, Outcome

#: outcomes written per transaction
BATCH = 250


@dataclass(frozen=True, slots=True)
class Written:
    """What one batch did."""

    fired: int = 0
    failed: int = 0
    #: tries moved back to ``scheduled``
    resumed: int = 0
    #: outcomes of rows this triggerer no longer held (taken over, timed out, cleared)
    dropped: int = 0


def write_outcomes(session: Session, triggerer_id: int, outcomes: Sequence[Outcome]) -> Written:
    """Write ``outcomes`` for the rows ``triggerer_id`` holds, in the caller's transaction."""
    held = trigger_claims.lock_held(session, triggerer_id, (o.trigger_id for o in outcomes))
    fired = failed = resumed = 0
    for outcome in outcomes:
        if outcome.trigger_id not in held:
            continue
        if isinstance(outcome, Fired):
            outcome = _storable(outcome)
        if isinstance(outcome, Fired):
            resumed += triggers.fire(session, outcome.trigger_id, outcome.payload)
            fired += 1
        else:
            resumed += _fail(session, outcome)
            failed += 1
    trigger_claims.delete_triggers(session, held)
    return Written(fired, failed, resumed, len(outcomes) - fired - failed)


def _storable(outcome: Fired) -> Outcome:
    """``outcome``, or a failure when its payload is not data the metastore can hold (the
    trigger's bug: Airflow's serializer refuses such an event too)."""
    try:
        triggers.encode_value(outcome.payload)
    except TypeError as exc:
        why = f"the trigger's event cannot be stored: {exc}\n"
        return Failed(outcome.trigger_id, FAILURE_ERROR, (why,))
    return outcome


def _fail(session: Session, outcome: Failed) -> int:
    return triggers.fail(session, outcome.trigger_id, outcome.error, list(outcome.traceback))
