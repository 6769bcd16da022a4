"""Benchmarks: read ../shared/data, write JSON (+ PNG) under bench/results/."""
