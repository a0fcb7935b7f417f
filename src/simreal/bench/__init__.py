"""Reproducible benchmarks that double as demos."""
