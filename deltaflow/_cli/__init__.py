"""The ``deltaflow`` command, one module per job; ``deltaflow.cli.main`` is the entry point."""
