"""Tradewind: a highly available workflow orchestrator in the shape of Apache Airflow.

Importing this package does nothing: every process entry point loads its settings
and wires its parts itself (see ``cluster.cli``).
"""

__version__ = "0.1.0"
