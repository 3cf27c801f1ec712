"""The benchmarks are a package: every module imports without running, none edits sys.path,
and every script answers ``--help`` through ``main(argv)``."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import sys
from pathlib import Path

import pytest

# The benchmarks run from the repository root (``python -m benchmarks...``), where
# ``python -m pytest`` finds them too; a bare ``pytest`` does not put the root on the path.
REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import benchmarks  # noqa: E402

ROOT = Path(benchmarks.__file__).resolve().parent
MODULES = sorted(
    m.name for m in pkgutil.walk_packages([str(ROOT)], prefix="benchmarks.")
)
SCRIPTS = [m for m in MODULES if m.split(".")[1] in ("targets", "studies")
           and not m.endswith("__init__") and m.count(".") == 2]


def _source(module: str) -> Path:
    path = ROOT.parent.joinpath(*module.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def test_the_layout_is_there() -> None:
    assert {"benchmarks.common", "benchmarks.targets", "benchmarks.studies"} <= set(MODULES)
    assert {"benchmarks.targets.search", "benchmarks.targets.ann", "benchmarks.targets.index",
            "benchmarks.targets.quality", "benchmarks.targets.store", "benchmarks.targets.serve",
            "benchmarks.targets.load", "benchmarks.targets.find"} <= set(SCRIPTS)
    assert not list(ROOT.glob("bench_*.py")), "loose scripts left at the top of benchmarks/"


@pytest.mark.parametrize("module", MODULES)
def test_imports_without_running(module: str) -> None:
    importlib.import_module(module)


@pytest.mark.parametrize("module", MODULES)
def test_no_sys_path_edits(module: str) -> None:
    tree = ast.parse(_source(module).read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr == "path":
            value = node.value
            assert not (isinstance(value, ast.Name) and value.id == "sys"), (
                f"{module} touches sys.path (line {node.lineno})")


@pytest.mark.parametrize("module", MODULES)
def test_no_cross_imports_between_scripts(module: str) -> None:
    """Scripts share code through benchmarks.common only."""
    tree = ast.parse(_source(module).read_text())
    for node in ast.walk(tree):
        names = ([node.module or ""] if isinstance(node, ast.ImportFrom)
                 else [a.name for a in node.names] if isinstance(node, ast.Import) else [])
        for name in names:
            assert not name.startswith(("bench_", "results_io")), f"{module} imports {name}"
            if name.startswith(("benchmarks.targets.", "benchmarks.studies.")):
                pytest.fail(f"{module} imports the script {name}; share it in common/")


@pytest.mark.parametrize("module", SCRIPTS)
def test_main_help(module: str, capsys: pytest.CaptureFixture[str]) -> None:
    main = importlib.import_module(module).main
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    assert "usage:" in capsys.readouterr().out
