"""The runner: claim one try of a task instance, run it in a child, record what happened."""
