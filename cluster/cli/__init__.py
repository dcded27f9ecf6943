"""The ``tradewind`` command line: click groups, the only place that wires parts together."""
