"""`python -m tilesearch.cli`, as `tilesearch`."""

from tilesearch.cli import main

main()
