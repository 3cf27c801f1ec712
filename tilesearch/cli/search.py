"""`tilesearch search`: rank the tiles most like a query; table, JSON, GeoJSON, CSV, sheet."""

from __future__ import annotations

import json
from pathlib import Path

import click

from tilesearch import api
from tilesearch.cli.options import (
    check_output,
    parse_bbox,
    parse_lonlat,
    raw_weight_option,
    write_text,
)
from tilesearch.options import GSD_RANGE, METRIC, METRICS, RUNTIMES, K, SearchOptions
from tilesearch.retrieval import SearchFilter, SearchResult, load_polygon


@click.command("search")
@click.argument("store", type=click.Path(path_type=Path))
@click.option("--tile", "-t", type=int, help="Query by tile id.")
@click.option("--image", "-i", type=click.Path(path_type=Path), help="Query by an image file.")
@click.option("--gsd", type=click.FloatRange(*GSD_RANGE), default=None,
              help="Metres a pixel of the --image: the query is then one tile's ground at the "
                   "store's resolution [default: a georeferenced image's own, else the whole "
                   "image].")
@click.option("--lonlat", help="Query by the tile nearest LON,LAT (EPSG:4326).")
@click.option("--positive", "-p", "positives", type=int, multiple=True,
              help="More like this tile id (repeat for several).")
@click.option("--negative", "-n", "negatives", type=int, multiple=True,
              help="Less like this tile id (repeat for several).")
@click.option("--bbox", help="Only tiles centred in WEST,SOUTH,EAST,NORTH (EPSG:4326).")
@click.option("--within", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Only tiles centred inside the polygons of this GeoJSON file.")
@click.option("--in-image", "in_images", multiple=True,
              help="Only tiles of this indexed image (path or file name; repeatable).")
@click.option("--not-in-image", "not_in_images", multiple=True,
              help="No tiles of this indexed image (repeatable).")
@click.option("-k", type=click.IntRange(min=1), default=K, show_default=True,
              help="Hits to return.")
@click.option("--metric", type=click.Choice(METRICS), default=METRIC,
              show_default=True)
@click.option("--include-self", is_flag=True,
              help="Keep the query tile and the tiles overlapping it.")
@click.option("--allow-overlaps", is_flag=True,
              help="Keep hits that overlap a better-ranked hit.")
@click.option("--expand", type=click.IntRange(min=0), default=None,
              help="Alpha query expansion over this many neighbours (0: off) [default: 0; for "
                   "an image query on an augmented store, the augmentation's K].")
@raw_weight_option
@click.option("--offset", type=click.IntRange(min=0), default=0, show_default=True,
              help="Skip this many best hits (page through a long ranking).")
@click.option("--exact", is_flag=True, help="Scan every fingerprint; ignore the search index.")
@click.option("--json", "json_out", type=click.Path(path_type=Path),
              help="Write results as JSON ('-' for stdout).")
@click.option("--geojson", type=click.Path(path_type=Path),
              help="Write result footprints as GeoJSON (EPSG:4326; '-' for stdout).")
@click.option("--csv", "csv_out", type=click.Path(path_type=Path),
              help="Write results as CSV ('-' for stdout).")
@click.option("--gpkg", type=click.Path(path_type=Path),
              help="Write result footprints as a GeoPackage layer 'tilesearch_hits' "
                   "(EPSG:4326; needs the gis extra).")
@click.option("--sheet", type=click.Path(path_type=Path),
              help="Write a contact sheet PNG: the query beside its results.")
@click.option("--weights", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--runtime", type=click.Choice(RUNTIMES), default="auto", show_default=True)
def search_cmd(store: Path, tile: int | None, image: Path | None, gsd: float | None,
               lonlat: str | None,
               positives: tuple[int, ...], negatives: tuple[int, ...], bbox: str | None,
               within: Path | None, in_images: tuple[str, ...], not_in_images: tuple[str, ...],
               k: int, metric: str, include_self: bool, allow_overlaps: bool,
               expand: int | None, raw_weight: float | None,
               offset: int, exact: bool, json_out: Path | None,
               geojson: Path | None, csv_out: Path | None, gpkg: Path | None,
               sheet: Path | None, weights: Path | None, runtime: str) -> None:
    """Rank the K tiles of STORE most like a query tile, image or place."""
    outputs = {"json": json_out, "geojson": geojson, "csv": csv_out, "gpkg": gpkg,
               "sheet": sheet}
    for opt, target in outputs.items():
        if target is not None and not (opt in ("json", "geojson", "csv")
                                       and str(target) == "-"):
            check_output(target, f"--{opt}")
    if sum(str(t) == "-" for t in outputs.values() if t is not None) > 1:
        raise click.UsageError("only one of --json, --geojson and --csv can be '-' (stdout)")
    where = SearchFilter(bbox=parse_bbox(bbox), polygon=load_polygon(within) if within else None,
                         images=in_images, exclude_images=not_in_images)
    options = SearchOptions(k=k, metric=metric, exclude_self=not include_self,
                            suppress_overlaps=not allow_overlaps, expand=expand, offset=offset,
                            exact=exact, raw_weight=raw_weight)
    result = api.search(store, tile=tile, image=image, lonlat=parse_lonlat(lonlat),
                        positives=positives, negatives=negatives, where=where, weights=weights,
                        runtime=runtime, image_gsd=gsd, options=options)
    if not any(str(t) == "-" for t in outputs.values() if t is not None):
        _print_table(result)
    _write_outputs(result, store, json_out, geojson, csv_out, gpkg, sheet)


def _write_outputs(result: SearchResult, store: Path, json_out: Path | None,
                   geojson: Path | None, csv_out: Path | None, gpkg: Path | None,
                   sheet: Path | None) -> None:
    from tilesearch.outputs import export
    from tilesearch.store import Store

    if json_out is not None:
        write_text(json_out, export.to_json(result))
    if csv_out is not None:
        write_text(csv_out, export.to_csv(result))
    if geojson is not None or sheet is not None or gpkg is not None:
        with Store.open(store) as s:
            if gpkg is not None:
                from tilesearch.outputs import write_hits_gpkg

                write_hits_gpkg(result, s, gpkg)
                click.echo(f"wrote {gpkg}", err=True)
            if geojson is not None:
                write_text(geojson, json.dumps(export.to_geojson(result, s), indent=1,
                                                allow_nan=False))
            if sheet is not None:
                from tilesearch.outputs import render

                render.contact_sheet(result, s, sheet)
                click.echo(f"wrote {sheet}", err=True)


def _print_table(result: SearchResult) -> None:
    click.echo(f"query: {result.query.description}  ({result.metric} distance)")
    header = f"{'rank':>4}  {'tile':>8}  {'distance':>10}  {'source':<32}  " \
             f"{'window (col,row wxh)':<22}  {'lon':>11}  {'lat':>10}"
    click.echo(header)
    for h in result.hits:
        t, w = h.tile, h.tile.window
        lon, lat = (f"{t.lonlat[0]:.6f}", f"{t.lonlat[1]:.6f}") if t.lonlat else ("-", "-")
        name = Path(t.source).name
        name = name if len(name) <= 32 else "…" + name[-31:]
        win = f"{w.col_off},{w.row_off} {w.width}x{w.height}"
        click.echo(f"{h.rank:>4}  {t.tile_id:>8}  {h.distance:>10.4f}  {name:<32}  "
                   f"{win:<22}  {lon:>11}  {lat:>10}")
