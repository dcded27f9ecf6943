"""``tradewind migrate-from-airflow``: copy an Airflow 2.x metastore into Tradewind's.

:mod:`.source` reads Airflow's tables (reflection, no Airflow import), :mod:`.definitions`
copies variables, connections, pools, users and DAG pause states, :mod:`.history` the
runs with everything under them, :mod:`.run` orders the steps, :mod:`.report` counts.
"""
