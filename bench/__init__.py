"""Benchmarks: not run by `make test`; `make bench` runs them and prints ratios to a floor."""
