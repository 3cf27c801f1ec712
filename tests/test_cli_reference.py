"""docs/cli.md carries every command's `--help` as the CLI prints it, between two markers; this
test regenerates that part and fails when it differs (run with TILESEARCH_WRITE_DOCS=1 to
rewrite it, as datasette does with cog)."""

from __future__ import annotations

import os
from pathlib import Path

from click.testing import CliRunner

from tilesearch.cli import cli

DOC = Path(__file__).resolve().parents[1] / "docs" / "cli.md"
BEGIN = "<!-- begin: generated from --help by tests/test_cli_reference.py -->"
END = "<!-- end: generated -->"


def help_text(args: list[str]) -> str:
    result = CliRunner().invoke(cli, [*args, "--help"], prog_name="tilesearch",
                                terminal_width=100)
    assert result.exit_code == 0, result.output
    return result.output.rstrip()


def generated() -> str:
    parts = [BEGIN, "", "## Every option, as `--help` prints it", "",
             "```", help_text([]), "```"]
    for name in sorted(cli.commands):
        parts += ["", f"### tilesearch {name}", "", "```", help_text([name]), "```"]
    return "\n".join([*parts, "", END])


def test_the_reference_shows_what_help_prints() -> None:
    text = DOC.read_text()
    head = text.split(BEGIN)[0].rstrip() if BEGIN in text else text.rstrip()
    tail = text.split(END, 1)[1] if END in text else "\n"
    want = f"{head}\n\n{generated()}{tail}"
    if os.environ.get("TILESEARCH_WRITE_DOCS"):
        DOC.write_text(want)
        return
    assert text == want, "docs/cli.md is out of date: TILESEARCH_WRITE_DOCS=1 pytest " \
                         "tests/test_cli_reference.py rewrites it"
