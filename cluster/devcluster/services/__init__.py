"""Real services (MariaDB, ...) started as private child processes for tests, benchmarks
and the dev cluster: each with its own directory, socket, pid file and log, stopped by PID.
"""
