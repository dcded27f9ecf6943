"""The metastore: engine and sessions, ORM models, migrations, state transitions, secrets.

Importing this package does nothing. A process builds its engine once with
:func:`cluster.metastore.engine.create_engine_for`, checks the schema with
:func:`cluster.metastore.migrate.check` and passes a session factory down. Every
function that touches the database takes ``session=`` and never commits: the caller
(a scheduler loop iteration, an HTTP request, a CLI command) owns the transaction.
"""
