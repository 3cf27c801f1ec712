"""`tilesearch find`: every place like a label set, counted; and the tiles to label next."""

from __future__ import annotations

import json
from pathlib import Path

import click

from tilesearch import api, outputs
from tilesearch.cli.options import check_output, write_text
from tilesearch.detect import AuditCount, FindResult
from tilesearch.retrieval import load_regions

THRESHOLD = 0.5
"""Default probability a tile must reach to be found."""


@click.command("find")
@click.argument("store", type=click.Path(path_type=Path))
@click.argument("name")
@click.option("--threshold", type=click.FloatRange(0.0, 1.0), default=THRESHOLD,
              show_default=True, help="Keep tiles whose probability is at least this.")
@click.option("--geojson", type=click.Path(path_type=Path),
              help="Write the places found as GeoJSON (EPSG:4326; '-' for stdout).")
@click.option("--out", "out", type=click.Path(path_type=Path),
              help="Write the places found to this file: .geojson, .gpkg or .csv.")
@click.option("--heatmap", type=click.Path(path_type=Path, file_okay=False),
              help="Write a score heatmap per image (Cloud-Optimised GeoTIFF) in this folder.")
@click.option("--count-by", "count_by", type=click.Path(path_type=Path, dir_okay=False),
              help="Count the places in each polygon of this GeoJSON file (by its 'name').")
@click.option("--counts-csv", "counts_csv", type=click.Path(path_type=Path),
              help="With --count-by: write the counts per polygon as CSV.")
@click.option("--suggest", type=click.IntRange(1, 1000),
              help="List the N unlabelled tiles whose labels would help most.")
def find_cmd(store: Path, name: str, threshold: float, geojson: Path | None,
             out: Path | None, heatmap: Path | None, count_by: Path | None,
             counts_csv: Path | None, suggest: int | None) -> None:
    """Every place of STORE like the label set NAME: a calibrated classifier of its labels
    scores every tile; overlapping tiles above the threshold are one place, counted with the
    precision and recall it shows on the labels."""
    _check_outputs(geojson, out, heatmap, counts_csv, count_by)
    regions = load_regions(count_by) if count_by is not None else None
    scored = api.scores(store, name)
    result = api.find(store, name, threshold=threshold, scored=scored)
    if geojson is not None:
        write_text(geojson, json.dumps(result.to_geojson(), indent=1))
    if out is not None:
        click.echo(f"wrote {outputs.write_detections(result, out)}", err=True)
    if heatmap is not None:
        files = api.heatmaps(store, scored, heatmap)
        click.echo(f"wrote {len(files)} heatmap(s) in {heatmap}", err=True)
    quiet = geojson is not None and str(geojson) == "-"
    if not quiet:
        _echo_result(result)
    if regions is not None:
        counts = result.count_by(regions)
        if counts_csv is not None:
            click.echo(f"wrote {outputs.write_regions(counts, counts_csv)}", err=True)
        if not quiet:
            for c in counts:
                e = c.expected
                more = f"  expected {e[0]:.1f} ({e[1]:.1f} to {e[2]:.1f})" if e else ""
                click.echo(f"  {c.name}: {c.count}{more}")
    if suggest:
        picks = api.suggestions(store, name, suggest, scored=scored)
        click.echo(f"label these next ({len(picks)}): "
                   f"tilesearch label {store} {name} -p TILE / -n TILE", err=quiet)
        for t in picks:
            click.echo(f"  tile {t}  probability {scored.probabilities[t]:.2f}", err=quiet)


def _check_outputs(geojson: Path | None, out: Path | None, heatmap: Path | None,
                   counts_csv: Path | None, count_by: Path | None) -> None:
    """Every output path checked before any work, so that a bad one changes nothing."""
    if geojson is not None and str(geojson) != "-":
        check_output(geojson, "--geojson")
    if out is not None:
        check_output(out, "--out")
        if out.suffix.lower() not in outputs.FORMATS:
            raise click.BadParameter(f"{out}: write .geojson, .gpkg or .csv",
                                     param_hint="--out")
    if heatmap is not None and not heatmap.exists() and not heatmap.parent.is_dir():
        raise click.BadParameter(f"folder {heatmap.parent} does not exist",
                                 param_hint="--heatmap")
    if counts_csv is not None:
        if count_by is None:
            raise click.BadParameter("needs --count-by POLYGONS", param_hint="--counts-csv")
        check_output(counts_csv, "--counts-csv")


def audit_line(c: AuditCount) -> str:
    """The audited count, its interval and what it rests on, in one line."""
    return (f"  audited count {c.count:.1f} (90 % interval {c.low:.1f} to {c.high:.1f}): "
            f"{c.found_yes} of {c.found_answered} places reviewed are real, "
            f"{c.missed_yes} of {c.missed_answered} draws below were missed ones")


def _echo_result(result: FindResult) -> None:
    click.echo(f"{result.label_set}: {result.count} place(s) from {result.tiles} tile(s) at "
               f"or above {result.threshold:g}")
    v, expected = result.validation, result.expected_count
    if v.precision is not None and v.recall is not None:
        click.echo(f"  on its labels ({v.folds}-fold): precision {v.precision:.2f}, "
                   f"recall {v.recall:.2f}")
    if expected is not None:
        click.echo(f"  expected count {expected[0]:.1f} (90 % interval {expected[1]:.1f}"
                   f" to {expected[2]:.1f})")
    if result.audit is not None:
        click.echo(audit_line(result.audit))
    if result.audit_note:
        click.echo(f"  audit: {result.audit_note}")
    for i, d in enumerate(result.detections[:20], 1):
        where = f"{d.centre[0]:.6f},{d.centre[1]:.6f}" if d.centre else "-"
        click.echo(f"{i:>4}  score {d.max_score:.3f}  tiles {len(d.tiles):>3}  {where}")
    if result.count > 20:
        click.echo(f"  ... and {result.count - 20} more (write them with --out)")
