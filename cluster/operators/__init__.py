"""Airflow's core operators: ``bash``, ``python`` (Python, Branch, ShortCircuit), ``empty``,
and ``taskflow`` (the operators ``@task`` and its flavours build)."""
