"""`tilesearch build-index`: the approximate search index of a store."""

from __future__ import annotations

from pathlib import Path

import click

from tilesearch import api
from tilesearch.ann import DEFAULT_CODEC, NPROBE, REFINE_NPROBE
from tilesearch.options import BuildOptions


@click.command("build-index")
@click.argument("store", type=click.Path(path_type=Path))
@click.option("--codec", default=None,
              help=f"FAISS codec factory string [default: {DEFAULT_CODEC}]; a PCA is fitted "
                   "about the origin. PCA256,L2norm,SQ8,Refine(SQ8) suits codes-only stores "
                   "of millions of tiles.")
@click.option("--nprobe", type=click.IntRange(min=1), default=None,
              help=f"Inverted lists visited per query (IVF indexes) [default: {NPROBE}; "
                   f"{REFINE_NPROBE} for a refining codec; kept on extending].")
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

    options = BuildOptions(codec=codec, nprobe=nprobe, rebuild=rebuild, keep_full=not drop_full,
                           force=force, augment=augment, progress=True)
    r = api.build_index(store, options)
    if augment is not None:
        click.echo(f"augmentation: {'removed' if augment == 0 else f'{augment} neighbours'}")
    if r.action == "none":
        click.echo(f"{r.tiles:,} tiles: under {EXACT_BELOW:,}, exact search is fast; no index "
                   "built (use --force to build one anyway)")
        return
    click.echo(f"index {r.action}: {r.tiles:,} tiles, {r.factory}, {r.code_bytes} bytes a "
               f"tile, {r.seconds:.1f} s" + ("; full vectors dropped" if r.dropped_full else ""))
