"""`python -m tilesearch`: the same command line as `tilesearch`."""

from tilesearch.cli import main

if __name__ == "__main__":
    main()
