"""The worker's log server and the signed URLs that let a webserver read its logs.

``signing`` and ``paths`` are pure (standard library only): the web layer imports them
and nothing else of this package. ``server`` serves ``$TRADEWIND_HOME/logs`` on each worker.
"""
