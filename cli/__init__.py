"""The `overnight` command line: one module per command group."""
