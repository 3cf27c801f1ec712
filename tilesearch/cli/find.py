"""`tilesearch find`: every place like a label set, counted."""

from __future__ import annotations

import json
from pathlib import Path

import click

from tilesearch import api
from tilesearch.cli.options import check_output, write_text


@click.command("find")
@click.argument("store", type=click.Path(path_type=Path))
@click.argument("name")
@click.option("--threshold", type=click.FloatRange(0.0, 1.0), default=0.5, show_default=True,
              help="Keep tiles whose probability is at least this.")
@click.option("--geojson", type=click.Path(path_type=Path),
              help="Write the places found as GeoJSON (EPSG:4326; '-' for stdout).")
def find_cmd(store: Path, name: str, threshold: float, geojson: Path | None) -> None:
    """Every place of STORE like the label set NAME: a classifier of its labels scores
    every tile; overlapping tiles above the threshold are one place."""
    if geojson is not None and str(geojson) != "-":
        check_output(geojson, "--geojson")
    result = api.find(store, name, threshold=threshold)
    if geojson is not None:
        write_text(geojson, json.dumps(result.to_geojson(), indent=1))
    if geojson is None or str(geojson) != "-":
        click.echo(f"{name}: {result.count} place(s) from {result.tiles} tile(s) at or above "
                   f"{threshold:g}")
        v, expected = result.validation, result.expected_count
        if v.precision is not None and v.recall is not None:
            click.echo(f"  on its labels ({v.folds}-fold): precision {v.precision:.2f}, "
                       f"recall {v.recall:.2f}")
        if expected is not None:
            click.echo(f"  expected count {expected[0]:.1f} (90 % interval {expected[1]:.1f}"
                       f" to {expected[2]:.1f})")
        for i, d in enumerate(result.detections[:20], 1):
            where = f"{d.centre[0]:.6f},{d.centre[1]:.6f}" if d.centre else "-"
            click.echo(f"{i:>4}  score {d.max_score:.3f}  tiles {len(d.tiles):>3}  {where}")
