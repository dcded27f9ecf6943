"""Alembic migrations of the metastore, run by :mod:`cluster.metastore.migrate` (no alembic.ini)."""
