"""Each package says what is public in its `__all__` (as httpx's tests do): every name listed
exists, and every public name it holds is listed (submodules aside, unless listed)."""

import importlib
import inspect

import pytest

PACKAGES = ["tilesearch", "tilesearch.raster", "tilesearch.models", "tilesearch.store",
            "tilesearch.ingest", "tilesearch.ann", "tilesearch.retrieval", "tilesearch.quality",
            "tilesearch.outputs", "tilesearch.detect"]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_lists_exactly_the_public_members(name: str) -> None:
    package = importlib.import_module(name)
    listed = set(package.__all__)
    assert listed <= set(vars(package)), listed - set(vars(package))
    public = {member for member, value in vars(package).items()
              if not member.startswith("_")
              and not (inspect.ismodule(value) and member not in listed)
              and member != "annotations"}  # from __future__
    assert sorted(package.__all__) == sorted(public)
    assert len(package.__all__) == len(listed)  # no name twice


def test_the_readme_example_uses_public_names_only() -> None:
    import tilesearch

    for name in ("index", "build_index", "search", "SearchFilter", "Store", "info", "evaluate",
                 "export", "render", "TilesearchError"):
        assert name in tilesearch.__all__
    assert callable(tilesearch.export.write_geojson) and callable(tilesearch.render.contact_sheet)
