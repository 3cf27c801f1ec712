"""The benchmarks the docs' "at a glance" table rests on; ``make bench`` runs them all."""
