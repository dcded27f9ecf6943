"""DAG files → metastore rows: find files, import each in a child process, serialize, store."""
