"""The `tilesearch` command line: a thin shell over tilesearch.api."""

from __future__ import annotations

import errno
import json
import math
import os
import sqlite3
import sys
from pathlib import Path
from typing import Any

import click

from tilesearch import api
from tilesearch.errors import TilesearchError
from tilesearch.retrieval import DEFAULT_METRIC, SearchFilter, SearchResult, load_polygon


def _ints(text: str | None) -> list[int] | None:
    if not text:
        return None
    try:
        return [int(b) for b in text.split(",")]
    except ValueError as exc:
        raise click.BadParameter(f"expected comma-separated band numbers, got {text!r}") from exc


def _lonlat(text: str | None) -> tuple[float, float] | None:
    if text is None:
        return None
    try:
        lon, lat = (float(v) for v in text.split(","))
    except ValueError as exc:
        raise click.BadParameter(f"expected LON,LAT such as -8.358,40.702, got {text!r}") from exc
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise click.BadParameter(f"{text!r} is not a longitude,latitude pair")
    return lon, lat


def _bbox(text: str | None) -> tuple[float, float, float, float] | None:
    if text is None:
        return None
    try:
        west, south, east, north = (float(v) for v in text.split(","))
    except ValueError as exc:
        raise click.BadParameter(f"expected WEST,SOUTH,EAST,NORTH, got {text!r}") from exc
    if not all(map(math.isfinite, (west, south, east, north))):
        raise click.BadParameter(f"expected four finite numbers, got {text!r}")
    if west > east or south > north:
        raise click.BadParameter(f"expected WEST,SOUTH,EAST,NORTH with west <= east and "
                                 f"south <= north, got {text!r}")
    return west, south, east, north


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="tilesearch")
def cli() -> None:
    """Find similar places in huge aerial and drone imagery."""


@cli.command("index")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--store", "-s", required=True, type=click.Path(path_type=Path),
              help="Store folder to create or append to.")
@click.option("--model", "-m", default=None,
              help="Fingerprint model (default efficientnet-lite0-multilevel, or the store's).")
@click.option("--weights", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Weights file for the model (resnet18: torchvision's resnet18-*.pth).")
@click.option("--runtime", default="auto", show_default=True,
              help="Inference runtime: auto, openvino, onnxruntime or torch.")
@click.option("--recipe", default=None,
              help="How tiles meet the model: plain, rot4-128 or d4-128 [default: the "
                   "store's, else the default].")
@click.option("--tile-size", type=click.IntRange(32, 4096), default=None,
              help="Tile size in px [default: 256].")
@click.option("--stride", type=click.IntRange(min=1), default=None,
              help="Stride in px [default: 128].")
@click.option("--max-invalid", type=click.FloatRange(0.0, 1.0), default=None,
              help="Drop tiles with a larger invalid (nodata) fraction [default: 0.5].")
@click.option("--bands", default=None, help="Bands to use as RGB, e.g. 4,3,2 (1-based).")
@click.option("--batch-size", type=click.IntRange(min=1), default=None,
              help="Tiles per inference call [default: 64 on a CPU, 512 on a GPU].")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="Inference threads [default: all].")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
              show_default=True, help="Where the model runs (auto: a CUDA GPU when there is one).")
@click.option("--cluster", type=click.Choice(["auto", "local", "ray"]), default="auto",
              show_default=True,
              help="Run on a Ray cluster (auto: when RAY_ADDRESS is set; needs "
                   "tilesearch[cluster]).")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Ray workers, one model each [default: one per CPU, or GPU, of the cluster].")
@click.option("--readers", type=click.IntRange(min=1), default=None,
              help="Threads reading tiles ahead of the model [default: 1, up to 8 on a GPU].")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def index_cmd(paths: tuple[Path, ...], store: Path, model: str | None, weights: Path | None,
              runtime: str, recipe: str | None, tile_size: int | None, stride: int | None,
              max_invalid: float | None, bands: str | None, batch_size: int | None,
              threads: int | None, device: str, cluster: str, workers: int | None,
              readers: int | None, quiet: bool) -> None:
    """Tile and fingerprint every image under PATHS into a store (resumable)."""
    report = api.index(list(paths), store, model=model, weights=weights, runtime=runtime,
                       tile_size=tile_size, stride=stride, max_invalid=max_invalid,
                       bands=_ints(bands), batch_size=batch_size, threads=threads,
                       recipe=recipe, progress=not quiet, device=device, cluster=cluster,
                       workers=workers, readers=readers)
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


raw_weight_option = click.option(
    "--raw-weight", type=click.FloatRange(0.0, 1.0), default=None,
    help="With augmentation or expansion: rank by this share of the raw distance, which keeps "
         "the very place a query shows on top [default: 0.3 with augmentation, else 0].")


@cli.command("search")
@click.argument("store", type=click.Path(path_type=Path))
@click.option("--tile", "-t", type=int, help="Query by tile id.")
@click.option("--image", "-i", type=click.Path(path_type=Path), help="Query by an image file.")
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
@click.option("-k", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--metric", type=click.Choice(["euclidean", "cosine"]), default=DEFAULT_METRIC,
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
              help="Write result footprints as GeoJSON (EPSG:4326).")
@click.option("--csv", "csv_out", type=click.Path(path_type=Path), help="Write results as CSV.")
@click.option("--sheet", type=click.Path(path_type=Path),
              help="Write a contact sheet PNG: the query beside its results.")
@click.option("--weights", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--runtime", default="auto", show_default=True)
def search_cmd(store: Path, tile: int | None, image: Path | None, lonlat: str | None,
               positives: tuple[int, ...], negatives: tuple[int, ...], bbox: str | None,
               within: Path | None, in_images: tuple[str, ...], not_in_images: tuple[str, ...],
               k: int, metric: str, include_self: bool, allow_overlaps: bool,
               expand: int | None, raw_weight: float | None,
               offset: int, exact: bool, json_out: Path | None,
               geojson: Path | None, csv_out: Path | None, sheet: Path | None,
               weights: Path | None, runtime: str) -> None:
    """Rank the K tiles of STORE most like a query tile, image or place."""
    outputs = {"json": json_out, "geojson": geojson, "csv": csv_out, "sheet": sheet}
    for opt, target in outputs.items():
        if target is not None and not (opt != "sheet" and str(target) == "-"):
            check_output(target, f"--{opt}")
    if sum(str(t) == "-" for t in outputs.values() if t is not None) > 1:
        raise click.UsageError("only one of --json, --geojson and --csv can be '-' (stdout)")
    where = SearchFilter(bbox=_bbox(bbox), polygon=load_polygon(within) if within else None,
                         images=in_images, exclude_images=not_in_images)
    result = api.search(store, tile=tile, image=image, lonlat=_lonlat(lonlat),
                        positives=positives, negatives=negatives, where=where, k=k,
                        metric=metric, exclude_self=not include_self,
                        suppress_overlaps=not allow_overlaps, expand=expand, weights=weights,
                        runtime=runtime, offset=offset, exact=exact, raw_weight=raw_weight)
    if not any(str(t) == "-" for t in outputs.values() if t is not None):
        _print_table(result)
    _write_outputs(result, store, json_out, geojson, csv_out, sheet)


def check_output(path: Path, option: str) -> None:
    """UsageError unless `path` can be written: its folder exists and is writable, and it is
    not a folder itself (checked before any work, so a bad path changes nothing)."""
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise click.BadParameter(f"{path} is a folder; name a file", param_hint=option)
    if not folder.is_dir():
        raise click.BadParameter(f"folder {folder} does not exist", param_hint=option)
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise click.BadParameter(f"{path} cannot be written (no permission)",
                                 param_hint=option)


def _write_text(path: Path, text: str) -> None:
    """`text` to `path`, or to stdout for '-'."""
    if str(path) == "-":
        click.echo(text, nl=not text.endswith("\n"))
        return
    path.write_text(text, encoding="utf-8")
    click.echo(f"wrote {path}", err=True)


def _write_outputs(result: SearchResult, store: Path, json_out: Path | None,
                   geojson: Path | None, csv_out: Path | None, sheet: Path | None) -> None:
    from tilesearch.outputs import export
    from tilesearch.store import Store

    if json_out is not None:
        _write_text(json_out, export.to_json(result))
    if csv_out is not None:
        _write_text(csv_out, export.to_csv(result))
    if geojson is not None or sheet is not None:
        with Store.open(store) as s:
            if geojson is not None:
                _write_text(geojson, json.dumps(export.to_geojson(result, s), indent=1,
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


@cli.command("build-index")
@click.argument("store", type=click.Path(path_type=Path))
@click.option("--codec", default=None,
              help="FAISS codec factory string [default: PCA256,L2norm,SQ6, 192 bytes a "
                   "tile]; a PCA is fitted about the origin. PCA256,L2norm,SQ8,Refine(SQ8) "
                   "suits codes-only stores of millions of tiles.")
@click.option("--nprobe", type=click.IntRange(min=1), default=None,
              help="Inverted lists visited per query (IVF indexes) [default: 16; 8 for a "
                   "refining codec; kept on extending].")
@click.option("--rebuild", is_flag=True, help="Retrain from scratch instead of extending.")
@click.option("--drop-full/--keep-full", default=False, show_default=True,
              help="Drop the full-precision fingerprints once encoded: a much smaller store, "
                   "but no exact re-ranking (lower recall) and no retraining.")
@click.option("--force", is_flag=True, help="Build one even for a small store.")
@click.option("--augment", type=click.IntRange(min=0), default=None, metavar="K",
              help="Database-side augmentation: search each tile as the weighted mean of it "
                   "and its K nearest tiles from other places (finds 'the same kind of "
                   "place' better; 10 is a good K; 0 removes it). See docs/quality.md.")
def build_index_cmd(store: Path, codec: str | None, nprobe: int | None, rebuild: bool,
                    drop_full: bool, force: bool, augment: int | None) -> None:
    """Build (or extend with new tiles) the approximate search index of STORE."""
    from tilesearch.ann import EXACT_BELOW

    r = api.build_index(store, codec=codec, nprobe=nprobe, rebuild=rebuild,
                        keep_full=not drop_full, force=force, augment=augment, progress=True)
    if augment is not None:
        click.echo(f"augmentation: {'removed' if augment == 0 else f'{augment} neighbours'}")
    if r.action == "none":
        click.echo(f"{r.tiles:,} tiles: under {EXACT_BELOW:,}, exact search is fast; no index "
                   "built (use --force to build one anyway)")
        return
    click.echo(f"index {r.action}: {r.tiles:,} tiles, {r.factory}, {r.code_bytes} bytes a "
               f"tile, {r.seconds:.1f} s" + ("; full vectors dropped" if r.dropped_full else ""))


@cli.command("info")
@click.argument("store", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def info_cmd(store: Path, as_json: bool) -> None:
    """Images, tiles, model, bytes on disk and compression ratio of a store."""
    facts = api.info(store)
    if as_json:
        click.echo(json.dumps(facts, indent=2))
        return
    _print_info(facts)


def _print_info(f: dict[str, Any]) -> None:
    m = f["model"]
    lines = [
        ("store", f["store"]),
        ("model", f"{m['name']}, recipe {m.get('recipe', 'plain')} ({m['dim']}-d, "
                  f"weights sha256 {m['weights_sha256'][:12]})"),
        ("tiling", f"{f['tile_size']} px tiles, stride {f['stride']} px, "
                   f"max invalid {f['max_invalid']:.0%}"),
        ("images", f"{f['images']} indexed" + (f", {f['images_incomplete']} incomplete"
                                                if f["images_incomplete"] else "")),
        ("tiles", f"{f['tiles']:,}"),
        ("on disk", f"{f['bytes_on_disk'] / 1e6:.2f} MB"
                    + (f" ({f['bytes_per_tile']:.0f} bytes per tile)" if f["tiles"] else "")),
    ]
    if f["compression_ratio"]:
        lines.append(("compression", f"{f['compression_ratio']:.1f}x against the float32 "
                                     "pixels of the indexed images"))
    if ix := f.get("search_index"):
        lines.append(("search index", f"{ix['factory']} over {ix['count']:,} tiles, "
                      f"{ix['code_bytes']} bytes a tile ({ix['code_compression_ratio']:.0f}x "
                      "codes against pixels)"
                      + (f"; {ix['tiles_not_indexed']:,} newer tiles searched exactly"
                         if ix["tiles_not_indexed"] else "")))
    if aug := f.get("augment"):
        newer = f["tiles"] - int(aug["count"])
        weight = f["search_raw_weight"]
        lines.append(("augmented", f"{aug['k']} neighbours, alpha {aug['alpha']:g}"
                      + (f"; {newer:,} newer tiles not augmented" if newer else "")
                      + (f"; searches mix in {weight:g} of the raw distance" if weight else "")))
    if f["lonlat_bbox"]:
        lines.append(("lon/lat bbox", ", ".join(f"{v:.6f}" for v in f["lonlat_bbox"])))
    for key, value in lines:
        click.echo(f"{key:>13}: {value}")
    for fail in f["failures"]:
        click.echo(f"{'failed':>13}: {fail['path']}: {fail['reason']}")


@cli.command("check")
@click.argument("store", type=click.Path(path_type=Path))
@click.option("--repair", is_flag=True,
              help="Recover what can be: forget tiles whose fingerprints were lost (their "
                   "images resume on the next 'index'), recompute the stored norms.")
@click.option("--json", "json_out", type=click.Path(path_type=Path),
              help="Write the report as JSON ('-' for stdout).")
def check_cmd(store: Path, repair: bool, json_out: Path | None) -> None:
    """Look STORE over for damage (exit code 1 when it cannot be used as it is)."""
    if json_out is not None and str(json_out) != "-":
        check_output(json_out, "--json")
    report = api.check(store, repair=repair)
    if json_out is not None and str(json_out) == "-":
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        click.echo(f"{report.store}: {report.tiles:,} tiles, "
                   + ("ok" if report.ok else f"{len(report.problems)} problem(s)"))
        for kind, lines in (("problem", report.problems), ("repaired", report.repaired),
                            ("note", report.notes)):
            for line in lines:
                click.echo(f"  {kind}: {line}")
    if json_out is not None and str(json_out) != "-":
        _write_text(json_out, json.dumps(report.to_dict(), indent=2))
    if not report.ok:
        click.echo(f"error: {report.store}: the store is damaged: {report.problems[0]}",
                   err=True)
        raise SystemExit(1)


@cli.command("evaluate")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--model", "-m", default=None, help="Model [default: efficientnet-lite0-multilevel].")
@click.option("--weights", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--runtime", default="auto", show_default=True)
@click.option("--metric", type=click.Choice(["euclidean", "cosine"]), default=DEFAULT_METRIC,
              show_default=True)
@click.option("--expand", type=click.IntRange(min=0), default=0, show_default=True,
              help="Alpha query expansion over this many neighbours (0: off).")
@click.option("--recipe", default=None, help="plain, rot4-128 or d4-128 [default: the default].")
@click.option("--augment", type=click.IntRange(min=0), default=0, show_default=True,
              metavar="K", help="Database-side augmentation over K neighbours (0: off), "
                                "as 'build-index --augment K'.")
@raw_weight_option
@click.option("--json", "json_out", type=click.Path(path_type=Path), help="Write the report.")
def evaluate_cmd(folder: Path, model: str | None, weights: Path | None, runtime: str,
                 metric: str, expand: int, recipe: str | None, augment: int,
                 raw_weight: float | None, json_out: Path | None) -> None:
    """Retrieval quality on a labelled FOLDER of <class>/<image> files (mAP, P@1/5/10)."""
    if json_out is not None and str(json_out) != "-":
        check_output(json_out, "--json")
    report = api.evaluate(folder, model=model, weights=weights, runtime=runtime, metric=metric,
                          expand=expand, recipe=recipe, augment=augment,
                          raw_weight=raw_weight, progress=True)
    names = list(report.overall)
    click.echo(f"{report.images} images, {report.classes} classes, {metric} distance")
    click.echo(f"{'class':<22}" + "".join(f"{n:>8}" for n in names))
    for cls, scores in report.per_class.items():
        click.echo(f"{cls:<22}" + "".join(f"{scores[n]:>8.3f}" for n in names))
    click.echo(f"{'overall':<22}" + "".join(f"{report.overall[n]:>8.3f}" for n in names))
    if json_out is not None:
        _write_text(json_out, json.dumps(report.to_dict(), indent=2))


@cli.command("robustness")
@click.argument("store", type=click.Path(path_type=Path))
@click.option("--samples", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--metric", type=click.Choice(["euclidean", "cosine"]), default=DEFAULT_METRIC,
              show_default=True)
@click.option("--weights", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@raw_weight_option
@click.option("--json", "json_out", type=click.Path(path_type=Path), help="Write the report.")
def robustness_cmd(store: Path, samples: int, seed: int, metric: str, weights: Path | None,
                   raw_weight: float | None, json_out: Path | None) -> None:
    """Label-free check: do transformed copies of indexed tiles find their source tile?"""
    if json_out is not None and str(json_out) != "-":
        check_output(json_out, "--json")
    report = api.check_transforms(store, samples=samples, seed=seed, metric=metric,
                                  weights=weights, raw_weight=raw_weight, progress=True)
    click.echo(f"{report.samples} source tiles, {metric} distance")
    click.echo(f"{'transform':<16}{'rank 1':>8}{'top 10':>8}")
    for name, rate in report.rank1.items():
        click.echo(f"{name:<16}{rate:>8.3f}{report.top10[name]:>8.3f}")
    if json_out is not None:
        _write_text(json_out, json.dumps(report.to_dict(), indent=2))


@cli.command("demo")
@click.option("--out", type=click.Path(path_type=Path), default=Path("tilesearch-demo"),
              show_default=True, help="Folder for the store, sheets and GeoJSON.")
@click.option("--data", type=click.Path(exists=True, path_type=Path), default=None,
              help="Imagery to index instead of the bundled sample (deepforest's NEON tiles).")
@click.option("--queries", type=int, default=3, show_default=True)
@click.option("-k", type=int, default=8, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
def demo_cmd(out: Path, data: Path | None, queries: int, k: int, seed: int) -> None:
    """Index real sample imagery offline and write contact sheets and GeoJSON."""
    from tilesearch.demo import run_demo

    run_demo(out, data=data, queries=queries, k=k, seed=seed, echo=click.echo)


@cli.command("serve")
@click.argument("store", type=click.Path(path_type=Path))
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.option("--open/--no-open", "open_browser", default=False, show_default=True,
              help="Open the page in a web browser.")
@click.option("--build-overviews", is_flag=True,
              help="First build overviews for images lacking them (see 'tilesearch overviews').")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Server processes (more serve more concurrent users on more cores).")
@click.option("--warm/--no-warm", default=True, show_default=True,
              help="Read the store's search files into memory in the background at start "
                   "(those that fit in half the free memory), so that a large store soon "
                   "answers at in-memory speed.")
@click.option("--allow-host", "allow_hosts", multiple=True, metavar="NAME",
              help="Also answer requests naming this host (repeatable), e.g. the machine's "
                   "LAN name behind --host 0.0.0.0; others get 421 (DNS rebinding).")
@click.option("--expose-paths", is_flag=True,
              help="Show absolute file paths in answers (info, failures, downloads); by "
                   "default only file names leave the server.")
def serve_cmd(store: Path, host: str, port: int, open_browser: bool,
              build_overviews: bool, workers: int, warm: bool, allow_hosts: tuple[str, ...],
              expose_paths: bool) -> None:
    """Explore STORE in a local web app: click a place, see where else it occurs.

    It answers only requests naming 127.0.0.1, localhost, ::1 or --host, refuses
    cross-origin POSTs and has no login: bind --host beyond loopback only on a trusted
    network."""
    from tilesearch.web import serve

    serve(store, host=host, port=port, open_browser=open_browser,
          build_overviews=build_overviews, workers=workers, warm=warm,
          expose_paths=expose_paths, allowed_hosts=allow_hosts)


@cli.command("overviews")
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


def main() -> None:
    """Entry point: turns every error into a one-line message (exit code 2 for a tilesearch
    error, 1 for anything else; TILESEARCH_DEBUG=1 shows the traceback)."""
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except TilesearchError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except SystemExit:
        raise
    except Exception as exc:
        if os.environ.get("TILESEARCH_DEBUG"):
            raise
        click.echo(f"error: {describe(exc)}", err=True)
        sys.exit(1)


def describe(exc: Exception) -> str:
    """One line for an error that is not a TilesearchError: disk full, no permission, a
    damaged store database, or (a bug) anything else."""
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return (f"{where}no space left on the disk; free some and run the command again "
                    "(a store keeps every tile committed before the disk filled)")
        return f"{where}{exc.strerror or exc}"
    if isinstance(exc, sqlite3.DatabaseError):
        return (f"the store's meta.sqlite failed ({exc}); run 'tilesearch check STORE' to "
                "see what is damaged")
    line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return (f"internal error ({type(exc).__name__}{': ' + line if line else ''}); please "
            "report it, with TILESEARCH_DEBUG=1 set to show the traceback")


if __name__ == "__main__":
    main()
