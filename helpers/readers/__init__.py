"""Readers of raw profiling data: one module per on-disk format (see docs/raw-format.md)."""
