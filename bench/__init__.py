"""Benchmarks: ``python -m bench`` prints markdown tables. Never run as timed tests."""
