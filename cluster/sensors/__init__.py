"""Airflow's core sensors: ``base`` (poke and reschedule modes), ``python``, ``bash``,
``time_delta``, ``time_sensor``, ``date_time``, ``weekday``, ``filesystem``."""
