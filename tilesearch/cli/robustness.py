"""`tilesearch robustness`: the label-free check of a store."""

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
from tilesearch.retrieval import DEFAULT_METRIC


@click.command("robustness")
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
    report = api.robustness(store, samples=samples, seed=seed, metric=metric,
                                  weights=weights, raw_weight=raw_weight, progress=True)
    click.echo(f"{report.samples} source tiles, {metric} distance")
    click.echo(f"{'transform':<16}{'rank 1':>8}{'top 10':>8}")
    for name, rate in report.rank1.items():
        click.echo(f"{name:<16}{rate:>8.3f}{report.top10[name]:>8.3f}")
    if json_out is not None:
        write_text(json_out, json.dumps(report.to_dict(), indent=2))
