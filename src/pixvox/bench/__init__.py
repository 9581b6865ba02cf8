"""Benchmarks that print a table and write JSON; tools/bench_*.py are thin wrappers over them."""
