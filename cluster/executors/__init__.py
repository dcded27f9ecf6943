"""Executors hand queued task instances to something that runs them: local processes or Celery."""
