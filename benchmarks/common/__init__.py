"""Helpers the benchmark scripts share: ``data`` (../shared/data, skipping cleanly without it),
``synthetic`` (stores and fingerprints), ``measure`` (timers, medians, memory), ``web`` (a
server on a free port), ``results`` (JSON under benchmarks/results/), and the retrieval-quality
study's networks (``lite``) and features (``features``)."""
