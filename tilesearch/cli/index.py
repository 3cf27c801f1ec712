"""`tilesearch index`: tile and fingerprint images into a store."""

from __future__ import annotations

from pathlib import Path

import click

from tilesearch import api
from tilesearch.cli.options import parse_bands
from tilesearch.models import DEFAULT_MODEL, DEFAULT_RECIPE, GPU_BATCH, RECIPES, TILE_RECIPE
from tilesearch.options import (
    CLUSTERS,
    CPU_BATCH,
    DEVICES,
    GSD,
    GSD_RANGE,
    MAX_INVALID,
    MAX_UPSAMPLE,
    RUNTIMES,
    STRIDE,
    TILE_SIZE,
    IndexOptions,
)
from tilesearch.raster import read_list


@click.command("index")
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--from-list", "from_list", type=click.Path(exists=True, dir_okay=False),
              help="A text file naming images, one a line (paths or URLs; # comments).")
@click.option("--asset", default=None,
              help="The STAC asset key to index [default: 'visual', else the item's one "
                   "GeoTIFF asset].")
@click.option("--store", "-s", required=True, type=click.Path(path_type=Path),
              help="Store folder to create or append to.")
@click.option("--model", "-m", default=None,
              help=f"Fingerprint model [default: the store's, else {DEFAULT_MODEL}].")
@click.option("--weights", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Weights file for the model (resnet18: torchvision's resnet18-*.pth).")
@click.option("--runtime", type=click.Choice(RUNTIMES), default="auto", show_default=True,
              help="Inference runtime.")
@click.option("--recipe", default=None,
              help=f"How tiles meet the model: {', '.join(RECIPES)} [default: the store's, "
                   f"else {DEFAULT_RECIPE} for a model that can be split where the tiling "
                   f"fits its blocks, else {TILE_RECIPE}].")
@click.option("--tile-size", type=click.IntRange(32, 4096), default=None,
              help=f"Tile size in px [default: the store's, else {TILE_SIZE}].")
@click.option("--stride", type=click.IntRange(min=1), default=None,
              help=f"Stride in px [default: the store's, else {STRIDE}].")
@click.option("--max-invalid", type=click.FloatRange(0.0, 1.0), default=None,
              help="Drop tiles with a larger invalid (nodata) fraction [default: the store's, "
                   f"else {MAX_INVALID}].")
@click.option("--gsd", default=None, metavar="METRES|auto|native",
              help="Ground resolution every tile is read at, metres a pixel, so that all "
                   "tiles cover the same ground; auto: the first georeferenced image's; "
                   f"native: each image's own [default: the store's, else {GSD}].")
@click.option("--pixel-size", type=click.FloatRange(*GSD_RANGE), default=None,
              help="Metres a pixel of images without georeferencing [default: read at native "
                   "resolution].")
@click.option("--max-upsample", type=click.FloatRange(min=1.0), default=MAX_UPSAMPLE,
              show_default=True,
              help="Upsample images up to this many times coarser than --gsd; skip coarser.")
@click.option("--bands", default=None, help="Bands to use as RGB, e.g. 4,3,2 (1-based).")
@click.option("--batch-size", type=click.IntRange(min=1), default=None,
              help=f"Tiles per inference call [default: {CPU_BATCH} on a CPU, {GPU_BATCH} on a "
                   "GPU].")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="Inference threads [default: all].")
@click.option("--device", type=click.Choice(DEVICES), default="auto",
              show_default=True, help="Where the model runs (auto: a CUDA GPU when there is one).")
@click.option("--cluster", type=click.Choice(CLUSTERS), default="auto",
              show_default=True,
              help="Run on a Ray cluster (auto: when RAY_ADDRESS is set; needs "
                   "the cluster extra).")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Ray workers, one model each [default: one per CPU, or GPU, of the cluster].")
@click.option("--readers", type=click.IntRange(min=1), default=None,
              help="Threads reading tiles ahead of the model [default: 1, up to 8 on a GPU].")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def index_cmd(paths: tuple[str, ...], from_list: str | None, asset: str | None, store: Path,
              model: str | None, weights: Path | None, runtime: str, recipe: str | None,
              tile_size: int | None, stride: int | None, max_invalid: float | None,
              gsd: str | None, pixel_size: float | None, max_upsample: float,
              bands: str | None, batch_size: int | None,
              threads: int | None, device: str, cluster: str, workers: int | None,
              readers: int | None, quiet: bool) -> None:
    """Tile and fingerprint every image under PATHS into a store (resumable). PATHS are
    files, folders, http(s) URLs, s3:// gs:// az:// objects, GDAL /vsi paths, or STAC Items,
    ItemCollections, Catalogs and Collections (.json files or URLs; the stac extra)."""
    names = [*paths, *(read_list(from_list) if from_list else [])]
    if not names:
        raise click.UsageError("name images to index: PATHS, or --from-list FILE")
    options = IndexOptions(model=model, weights=weights, runtime=runtime, recipe=recipe,
                           tile_size=tile_size, stride=stride, max_invalid=max_invalid,
                           bands=_bands(bands), batch_size=batch_size, threads=threads,
                           device=device, cluster=cluster, workers=workers, readers=readers,
                           asset=asset, gsd=gsd, pixel_size=pixel_size,
                           max_upsample=max_upsample, progress=not quiet)
    report = api.index(names, store, options)
    part = f" and {len(report.partial)} in part" if report.partial else ""
    click.echo(f"indexed {len(report.indexed)} image(s){part}, {report.tiles_added} tiles in "
               f"{report.seconds:.1f} s ({report.tiles_per_second:.1f} tiles/s) into {store}")
    if report.already_done:
        click.echo(f"already indexed, skipped: {len(report.already_done)} image(s)")
    partial = dict(report.partial)
    if report.failed:
        click.echo(f"skipped {len(report.failed)} file(s):", err=True)
        for path, reason in report.failed:
            click.echo(f"  {path}: {reason}", err=True)
            if path in partial:
                click.echo(f"    it failed part way: its {partial[path]} tiles indexed so far "
                           "stay searchable; run 'index' again to retry the rest", err=True)
    if not report.ok:
        raise SystemExit(1)


def _bands(text: str | None) -> tuple[int, ...] | None:
    bands = parse_bands(text)
    return tuple(bands) if bands else None
