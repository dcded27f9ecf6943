"""Airflow's core operators: ``bash``, ``python`` (Python, Branch, ShortCircuit), ``empty``.

``cluster.sdk`` is imported first so that the SDK is always complete before an
operator module needs it: ``@task`` (in the SDK) builds these operators, and these
operators derive from the SDK's ``BaseOperator``.
"""

import cluster.sdk  # noqa: F401 - load order, see above
