"""`tilesearch audit`: review random samples of what `find` found and left, for a count whose
interval holds."""

from __future__ import annotations

from pathlib import Path

import click

from tilesearch import api
from tilesearch.cli.find import THRESHOLD, audit_line
from tilesearch.cli.options import check_output
from tilesearch.detect import AUDIT_DRAW
from tilesearch.store import Store, StoredAudit


@click.command("audit")
@click.argument("store", type=click.Path(path_type=Path))
@click.argument("name")
@click.option("--draw", "draw", type=click.IntRange(1, 1000),
              help=f"Draw a new audit: N places found and N tiles below the threshold, at "
                   f"random (replaces the last one; {AUDIT_DRAW} is a good start).")
@click.option("--threshold", type=click.FloatRange(0.0, 1.0), default=THRESHOLD,
              show_default=True, help="With --draw: the threshold `find` will count at.")
@click.option("--yes", "yes", type=int, multiple=True,
              help="This audit tile holds what NAME marks (for a place: the place does).")
@click.option("--no", "no", type=int, multiple=True, help="This audit tile does not.")
@click.option("--sheet", type=click.Path(path_type=Path, dir_okay=False),
              help="Write the audit's unanswered tiles as a PNG to review.")
def audit_cmd(store: Path, name: str, draw: int | None, threshold: float,
              yes: tuple[int, ...], no: tuple[int, ...], sheet: Path | None) -> None:
    """Audit the count of the label set NAME: draw random samples of the places found and of
    the tiles left below the threshold, answer yes or no for each, and `find` gives the
    audited count with a 90 % interval. Without options, show the audit's state."""
    if sheet is not None:
        check_output(sheet, "--sheet")
    if draw and (yes or no):
        raise click.UsageError("draw an audit first, then answer its tiles")
    if draw:
        got = api.audit(store, name, draw, threshold=threshold)
    elif yes or no:
        got = api.answer_audit(store, name, present=yes, absent=no)
    else:
        with Store.open(store) as s:
            found = s.audit(name)
        if found is None:
            raise click.UsageError(f"the label set {name!r} has no audit yet: tilesearch "
                                   f"audit {store} {name} --draw {AUDIT_DRAW}")
        got = found
    _echo(store, got)
    if sheet is not None:
        _write_sheet(store, got, sheet)
    if not got.unanswered:
        result = api.find(store, name, threshold=got.threshold)
        if result.audit is not None:
            click.echo(audit_line(result.audit))
        elif result.audit_note:
            click.echo(f"  {result.audit_note}")


def _echo(store: Path, got: StoredAudit) -> None:
    left = set(got.unanswered)
    click.echo(f"{got.name}: audit at threshold {got.threshold:g} of {got.places} place(s); "
               f"{len(got.tiles) - len(left)} of {len(got.tiles)} tile(s) answered")
    for kind, what in (("found", "best tile of a place found"),
                       ("missed", "tile below the threshold")):
        todo = [t.tile_id for t in got.of(kind) if t.tile_id in left]
        if todo:
            click.echo(f"  to review ({what}): {' '.join(map(str, todo))}")
    if left:
        click.echo(f"  answer: tilesearch audit {store} {got.name} --yes TILE --no TILE")


def _write_sheet(store: Path, got: StoredAudit, path: Path) -> None:
    from tilesearch.outputs import render

    left = set(got.unanswered)
    tiles = [(t.tile_id, [f"tile {t.tile_id}", "place found" if t.kind == "found"
                          else "below the threshold"]) for t in got.tiles if t.tile_id in left]
    with Store.open(store) as s:
        out = render.tile_grid(s, tiles, path, f"audit of {got.name}: is it there? "
                               f"{len(tiles)} tile(s) to answer")
    click.echo(f"wrote {out}", err=True)
