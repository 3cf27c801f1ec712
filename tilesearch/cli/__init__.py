"""The `tilesearch` command line: a thin shell over `tilesearch.api`, one module a command
(rasterio's `rio` layout); shared options and output writing in `options`."""

from __future__ import annotations

import errno
import os
import sqlite3
import sys

import click

from tilesearch.cli import (
    audit,
    build_index,
    check,
    demo,
    evaluate,
    export_fingerprints,
    find,
    index,
    info,
    label,
    overviews,
    robustness,
    search,
    serve,
)
from tilesearch.errors import TilesearchError

__all__ = ["COMMANDS", "cli", "describe", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="tilesearch")
def cli() -> None:
    """Find similar places in huge aerial and drone imagery."""


COMMANDS = (index.index_cmd, search.search_cmd, build_index.build_index_cmd, info.info_cmd,
            check.check_cmd, label.label_cmd, find.find_cmd, audit.audit_cmd,
            evaluate.evaluate_cmd,
            robustness.robustness_cmd, demo.demo_cmd, serve.serve_cmd, overviews.overviews_cmd,
            export_fingerprints.export_fingerprints_cmd)
for _command in COMMANDS:
    cli.add_command(_command)


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


