"""tilesearch's benchmarks, run from the repository root as ``python -m benchmarks.<group>.<name>``.

``targets`` holds the scripts the docs' "at a glance" table rests on (``make bench`` runs them),
``studies`` the measurements behind decisions already taken (kept runnable), and ``common`` the
helpers they share: data, synthetic stores and fingerprints, measurement, web servers, results.
See benchmarks/README.md for what each script answers.
"""
