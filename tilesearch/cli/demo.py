"""`tilesearch demo`: index sample imagery and write sheets and GeoJSON."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("demo")
@click.option("--out", type=click.Path(path_type=Path), default=Path("tilesearch-demo"),
              show_default=True, help="Folder for the store, sheets and GeoJSON.")
@click.option("--data", type=click.Path(exists=True, path_type=Path), default=None,
              help="Imagery to index instead of the bundled sample (deepforest's images).")
@click.option("--queries", type=int, default=3, show_default=True)
@click.option("-k", type=int, default=8, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
def demo_cmd(out: Path, data: Path | None, queries: int, k: int, seed: int) -> None:
    """Index real sample imagery offline and write contact sheets and GeoJSON."""
    from tilesearch.demo import run_demo

    run_demo(out, data=data, queries=queries, k=k, seed=seed, echo=click.echo)
