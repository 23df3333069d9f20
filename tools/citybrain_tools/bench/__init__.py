"""Benchmarks behind `citybrain bench ...`: each prints a table and optionally JSON."""
