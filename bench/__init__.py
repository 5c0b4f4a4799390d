"""Benchmarks: one file per case, sizes in ``configurations.py``; each prints one JSON line per case."""
