"""`tilesearch check`: a store's damage, and its repair."""

from __future__ import annotations

import json
from pathlib import Path

import click

from tilesearch import api
from tilesearch.cli.options import (
    check_output,
    write_text,
)


@click.command("check")
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
        write_text(json_out, json.dumps(report.to_dict(), indent=2))
    if not report.ok:
        click.echo(f"error: {report.store}: the store is damaged: {report.problems[0]}",
                   err=True)
        raise SystemExit(1)
