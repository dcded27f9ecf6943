"""Deferral's triggers: :class:`~cluster.triggers.base.BaseTrigger` and the standard ones.

A deferred task hands a trigger to ``tradewind triggerer`` (or, under ``dags test``,
runs it inline). Airflow's ``airflow.triggers.X`` modules resolve to ``cluster.triggers.X``.
"""
