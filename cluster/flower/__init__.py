"""``tradewind flower``: Celery Flower on the cluster's brokers, behind a sign-in.

:mod:`cluster.flower.server` builds Flower from ``[flower]`` and the workers' Celery app;
:mod:`cluster.flower.guard` lets in the webserver's Admin and Op users.
"""
