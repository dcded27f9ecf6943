"""Prometheus metrics of the scheduler, the workers and the webservers.

One recorder per process kind (:mod:`.scheduler`, :mod:`.worker`, :mod:`.webserver`)
defines its metrics in a registry of its own when it is built, never at import, and
offers small methods named after what happened. :mod:`.exposition` serves a registry
over HTTP and switches processes that fork (gunicorn, the worker's pool) to
prometheus_client's multiprocess mode, so one scrape sees every process.
"""
