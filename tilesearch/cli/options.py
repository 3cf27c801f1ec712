"""Options and parsers shared by the commands, and writing their outputs."""

from __future__ import annotations

import math
import os
from pathlib import Path

import click


def parse_bands(text: str | None) -> list[int] | None:
    if not text:
        return None
    try:
        return [int(b) for b in text.split(",")]
    except ValueError as exc:
        raise click.BadParameter(f"expected comma-separated band numbers, got {text!r}") from exc


def parse_lonlat(text: str | None) -> tuple[float, float] | None:
    if text is None:
        return None
    try:
        lon, lat = (float(v) for v in text.split(","))
    except ValueError as exc:
        raise click.BadParameter(f"expected LON,LAT such as -8.358,40.702, got {text!r}") from exc
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise click.BadParameter(f"{text!r} is not a longitude,latitude pair")
    return lon, lat


def parse_bbox(text: str | None) -> tuple[float, float, float, float] | None:
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


raw_weight_option = click.option(
    "--raw-weight", type=click.FloatRange(0.0, 1.0), default=None,
    help="With augmentation or expansion: rank by this share of the raw distance, which keeps "
         "the very place a query shows on top [default: 0.3 with augmentation, else 0].")


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


def write_text(path: Path, text: str) -> None:
    """`text` to `path`, or to stdout for '-'."""
    if str(path) == "-":
        click.echo(text, nl=not text.endswith("\n"))
        return
    path.write_text(text, encoding="utf-8")
    click.echo(f"wrote {path}", err=True)
