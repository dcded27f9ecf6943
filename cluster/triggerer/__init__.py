"""``tradewind triggerer``: runs the triggers of deferred tasks, many at once, on asyncio.

A try that defers leaves a ``trigger`` row and frees its worker slot. Triggerers claim
those rows (:mod:`cluster.metastore.trigger_claims`), run each trigger as a coroutine on
one asyncio loop (:mod:`.runner`, a thread of its own), and write what a trigger yields
back to the metastore (:mod:`.delivery`), which resumes the try on a worker. Several
triggerers share the rows; one that stops beating loses its rows to the others
(:mod:`.service`), and one that cannot beat stops its triggers itself (:mod:`.pulse`).
Only the CLI imports this package.
"""
