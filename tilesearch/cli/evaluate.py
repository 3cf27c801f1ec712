"""`tilesearch evaluate`: retrieval quality on a labelled folder."""

from __future__ import annotations

import json
from pathlib import Path

import click

from tilesearch import api
from tilesearch.cli.options import (
    check_output,
    raw_weight_option,
    write_text,
)
from tilesearch.models import RECIPES
from tilesearch.retrieval import DEFAULT_METRIC


@click.command("evaluate")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--model", "-m", default=None, help="Model [default: efficientnet-lite0-multilevel].")
@click.option("--weights", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--runtime", default="auto", show_default=True)
@click.option("--metric", type=click.Choice(["euclidean", "cosine"]), default=DEFAULT_METRIC,
              show_default=True)
@click.option("--expand", type=click.IntRange(min=0), default=0, show_default=True,
              help="Alpha query expansion over this many neighbours (0: off).")
@click.option("--recipe", default=None,
              help=f"{', '.join(RECIPES)} [default: the model's default; a block recipe "
                   "fingerprints each labelled image as one tile].")
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
        write_text(json_out, json.dumps(report.to_dict(), indent=2))
