"""The package's layers: imports go one way (a stage imports only the stages below it), and
from outside a subpackage only its `__init__` is imported. The check reads every module's
imports (function-level ones too) with `ast`; it also runs on made-up modules to show it fails."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "tilesearch"
LAYERS: list[tuple[str, ...]] = [
    ("errors",),
    ("tiling",),
    ("records",),
    ("geo",),
    ("options",),
    ("raster",),
    ("models",),
    ("store",),
    ("ingest", "ann"),
    ("retrieval",),
    ("detect",),
    ("quality", "outputs"),
    ("api",),
    ("demo", "web"),
    ("cli",),
    ("__main__",),
    ("__init__",),
]
"""Lowest first. A unit (a top-level module or subpackage) may import the units of lower rows;
units of one row are independent of each other."""
RANK = {unit: i for i, row in enumerate(LAYERS) for unit in row}


def unit_of(module: str) -> str:
    """'tilesearch.store.files' -> 'store'; 'tilesearch' -> '__init__'."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def imported(source: str, module: str, is_package: bool) -> list[tuple[str, int]]:
    """(absolute module, line) of every tilesearch import in `source` (of `module`)."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = module.split(".") if is_package else module.split(".")[:-1]
                base = ".".join(pkg[:len(pkg) - node.level + 1] + ([base] if base else []))
            if base == "tilesearch":  # from tilesearch import ann, api: modules or names
                out += [(f"tilesearch.{a.name}", node.lineno) for a in node.names
                        if a.name != "__version__"]
            else:
                out.append((base, node.lineno))
    return [(m, n) for m, n in out if m == "tilesearch" or m.startswith("tilesearch.")]


def problems(module: str, source: str, is_package: bool = False) -> list[str]:
    """Why `module`'s imports break the layers (empty when they do not)."""
    me = unit_of(module)
    found = []
    for target, line in imported(source, module, is_package):
        other = unit_of(target)
        if other == me:
            continue
        if other not in RANK or me not in RANK:
            found.append(f"{module}:{line}: {target}: unit not in LAYERS")
        elif RANK[other] >= RANK[me]:
            found.append(f"{module}:{line} imports {target}: {other} is not below {me}")
        elif target.count(".") > 1:
            found.append(f"{module}:{line} imports {target}: import tilesearch.{other}, "
                         "its public part")
    return found


def modules() -> list[tuple[str, Path]]:
    out = []
    for f in sorted(PACKAGE.rglob("*.py")):
        rel = f.relative_to(PACKAGE.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out.append((".".join(parts), f))
    return out


def test_every_import_goes_down_the_layers() -> None:
    found = []
    for module, path in modules():
        found += problems(module, path.read_text(), path.name == "__init__.py")
    assert found == []


def test_every_unit_has_a_layer() -> None:
    units = {unit_of(m) for m, _ in modules()}
    assert units <= set(RANK), units - set(RANK)


@pytest.mark.parametrize(("module", "source", "message"), [
    ("tilesearch.store.store", "from tilesearch.retrieval import nearest", "not below store"),
    ("tilesearch.raster.reader", "def f():\n    import tilesearch.api\n", "not below raster"),
    ("tilesearch.ann.index", "from tilesearch.ingest import index_images", "not below ann"),
    ("tilesearch.api", "from tilesearch.store.files import MANIFEST", "its public part"),
    ("tilesearch.retrieval.ranking", "from tilesearch import api", "not below retrieval"),
    ("tilesearch.store.files", "from ..ann import build", "not below store"),
])
def test_the_check_fails_on_an_upward_or_inner_import(module: str, source: str,
                                                     message: str) -> None:
    assert any(message in p for p in problems(module, source))


def test_imports_inside_a_unit_and_down_pass() -> None:
    src = ("from tilesearch.store.files import MANIFEST\nfrom tilesearch.errors import "
           "StoreError\nfrom tilesearch.models import ModelIdentity\n")
    assert problems("tilesearch.store.store", src) == []


def module_level_imports(source: str, module: str, is_package: bool,
                         known: set[str]) -> set[str]:
    """The tilesearch modules `source` imports when it is loaded (not inside functions);
    ``from package import submodule`` counts as importing the submodule."""
    out = set()
    for node in ast.parse(source).body:
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            subs = [f"{node.module}.{a.name}" for a in node.names]
            if all(sub in known for sub in subs):
                out |= set(subs)
                continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            out |= {m for m, _ in imported(ast.unparse(node), module, is_package)}
    return out


def test_no_import_cycle() -> None:
    """Module-level imports form no cycle (a package importing its own modules from its
    `__init__` is the usual tree, not a cycle: an edge to a package means its `__init__`)."""
    known = {m for m, _ in modules()}
    graph = {}
    for module, path in modules():
        if module.endswith(".__main__"):
            continue  # runs after its package is loaded
        targets = module_level_imports(path.read_text(), module, path.name == "__init__.py",
                                       known)
        graph[module] = {t if t in known else t.rsplit(".", 1)[0] for t in targets} - {module}
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle of `graph` (node -> the nodes it imports) as a path, or None."""
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*trail[trail.index(nxt):], nxt]
            if nxt not in state and (found := visit(nxt, [*trail, nxt])):
                return found
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node, [node])):
            return found
    return None


def test_the_cycle_check_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None
