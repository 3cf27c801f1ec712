"""`tilesearch info`: what a store holds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from tilesearch import api
from tilesearch.cli.options import check_output, write_text


@click.command("info")
@click.argument("store", type=click.Path(path_type=Path))
@click.option("--json", "json_out", type=click.Path(path_type=Path),
              help="Write the facts as JSON ('-' for stdout, instead of the table).")
def info_cmd(store: Path, json_out: Path | None) -> None:
    """Images, tiles, model, bytes on disk and compression ratio of a store."""
    if json_out is not None and str(json_out) != "-":
        check_output(json_out, "--json")
    facts = api.info(store)
    if json_out is None or str(json_out) != "-":
        _print_info(facts)
    if json_out is not None:
        write_text(json_out, json.dumps(facts, indent=2))


def _ground(f: dict[str, Any]) -> str:
    if f["tile_ground_m"]:
        return (f"{f['gsd']:.3g} m a pixel: a tile covers {f['tile_ground_m']:.3g} m x "
                f"{f['tile_ground_m']:.3g} m (images without georeferencing: their own pixels, "
                "unless indexed with --pixel-size)")
    if f["gsd"] == "auto":
        return "set by the first georeferenced image (none yet): images at their own pixels"
    return "each image at its own resolution (--gsd native)"


def _print_info(f: dict[str, Any]) -> None:
    m = f["model"]
    lines = [
        ("store", f["store"]),
        ("model", f"{m['name']}, recipe {m.get('recipe', 'plain')} ({m['dim']}-d, "
                  f"weights sha256 {m['weights_sha256'][:12]})"),
        ("tiling", f"{f['tile_size']} px tiles, stride {f['stride']} px, "
                   f"max invalid {f['max_invalid']:.0%}"),
        ("ground", _ground(f)),
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
