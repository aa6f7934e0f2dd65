"""Benchmarks: run each from the top of the tree as `.venv/bin/python -m bench.NAME`; each prints a
side-by-side comparison measured in the same run and writes bench/results/NAME.json."""
