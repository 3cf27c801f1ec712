"""`tilesearch overviews`: overviews for a store's images lacking them."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from tilesearch import api


@click.command("overviews")
@click.argument("store", type=click.Path(path_type=Path))
def overviews_cmd(store: Path) -> None:
    """Build overviews for STORE's images lacking them (fast zoomed-out maps in 'serve').

    A writable GeoTIFF gets IMAGE.ovr beside it (the image itself is untouched); other images
    get a VRT and its .ovr in STORE/overviews/."""
    failed = 0
    for r in api.build_overviews(store, echo=lambda m: click.echo(m, err=True)):
        if r["error"]:
            failed += 1
            click.echo(f"{r['path']}: failed: {r['error']}")
        elif r["levels"]:
            where = "beside it" if r["source"] == r["path"] else f"via {r['source']}"
            click.echo(f"{r['path']}: built 1/{', 1/'.join(map(str, r['levels']))} {where}")
        else:
            click.echo(f"{r['path']}: has overviews already (or is small)")
    if failed:
        sys.exit(1)
