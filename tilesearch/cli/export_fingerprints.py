"""`tilesearch export-fingerprints`: every tile's fingerprint as GeoParquet."""

from __future__ import annotations

from pathlib import Path

import click

from tilesearch import api
from tilesearch.cli.options import check_output


@click.command("export-fingerprints")
@click.argument("store", type=click.Path(path_type=Path))
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--names-only", is_flag=True,
              help="Name each tile's source by its file name, without its folders.")
def export_fingerprints_cmd(store: Path, out: Path, names_only: bool) -> None:
    """Write every tile of STORE to OUT as GeoParquet: footprint (lon/lat polygon), tile id,
    source, window and fingerprint (needs the gis extra). GeoPandas, DuckDB, QGIS and the
    embedding tools read it."""
    check_output(out, "OUT")
    n = api.export_fingerprints(store, out, progress=True, paths=not names_only)
    click.echo(f"wrote {out} ({n:,} tiles)", err=True)
