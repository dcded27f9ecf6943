"""Airflow's core sensors: ``base`` (poke and reschedule modes), ``python``, ``bash``,
``time_delta``, ``time_sensor``, ``date_time``, ``weekday``, ``filesystem``.

``cluster.sdk`` is imported first, for the same load-order reason as in
``cluster.operators``.
"""

import cluster.sdk  # noqa: F401 - load order
