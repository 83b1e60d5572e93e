"""Implementations of the command-line commands, one module per group."""
