"""Benchmarks behind decisions already taken (docs/decisions/), kept runnable."""
