"""`tilesearch label`: named sets of tiles marked positive or negative, kept in the store."""

from __future__ import annotations

import json
from pathlib import Path

import click

from tilesearch import api
from tilesearch.cli.options import check_output, write_text
from tilesearch.store import LabelSet, Store


@click.command("label")
@click.argument("store", type=click.Path(path_type=Path))
@click.argument("name", required=False)
@click.option("--positive", "-p", "positives", type=int, multiple=True,
              help="Mark this tile id positive (repeatable).")
@click.option("--negative", "-n", "negatives", type=int, multiple=True,
              help="Mark this tile id negative (repeatable).")
@click.option("--unlabel", type=int, multiple=True, help="Forget this tile's mark.")
@click.option("--from-geojson", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Mark the tiles of this GeoJSON's points (the nearest tile) and polygons "
                   "(tiles centred inside), EPSG:4326; property label: positive|negative.")
@click.option("--remove", is_flag=True, help="Delete the label set NAME.")
@click.option("--geojson", type=click.Path(path_type=Path),
              help="Write the set's tiles as GeoJSON with their marks ('-' for stdout).")
def label_cmd(store: Path, name: str | None, positives: tuple[int, ...],
              negatives: tuple[int, ...], unlabel: tuple[int, ...],
              from_geojson: Path | None, remove: bool, geojson: Path | None) -> None:
    """Mark tiles of STORE in the label set NAME (kept in the store); without NAME, list the
    label sets."""
    if geojson is not None and str(geojson) != "-":
        check_output(geojson, "--geojson")
    if name is None:
        if positives or negatives or unlabel or from_geojson or remove or geojson:
            raise click.UsageError("name the label set: tilesearch label STORE NAME ...")
        for found in api.label_sets(store):
            click.echo(f"{found.name}: {len(found.positives)} positive, "
                       f"{len(found.negatives)} negative")
        return
    if remove:
        n = api.remove_label_set(store, name)
        click.echo(f"removed label set {name!r} ({n} labels)")
        return
    if positives or negatives or unlabel or from_geojson:
        labels = api.label(store, name, positives=positives, negatives=negatives,
                           unlabel=unlabel, from_geojson=from_geojson)
    else:
        labels = _label_set(store, name)
    if geojson is not None:
        from tilesearch.outputs import export

        with Store.open(store) as opened:
            write_text(geojson, json.dumps(export.labels_geojson(labels, opened), indent=1))
    if geojson is None or str(geojson) != "-":
        click.echo(f"{labels.name}: {len(labels.positives)} positive "
                   f"({', '.join(map(str, labels.positives[:10])) or '-'}), "
                   f"{len(labels.negatives)} negative "
                   f"({', '.join(map(str, labels.negatives[:10])) or '-'})")


def _label_set(store: Path, name: str) -> LabelSet:
    """The label set `name`; QueryError listing the sets there are when there is none."""
    with Store.open(store) as opened:
        return opened.label_set(name)
