"""Warming a store: its search files read into memory ahead of queries, within a budget."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_ann import IDENTITY, add_image, clustered

from tilesearch import ann, api
from tilesearch.store import Store
from tilesearch.store import warming as warm


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    monkeypatch.setattr(ann.spec, "IVF_ABOVE", 1000)
    s = Store.create(tmp_path / "w.tiles", IDENTITY)
    add_image(s, "/a.tif", clustered(3000, 1))
    ann.build(s, codec="PCA12,SQ8,Refine(SQ8)", force=True)
    return s


def test_search_files_list_what_queries_read_most_needed_first(store: Store) -> None:
    files = warm.search_files(store)
    entry = store.manifest["ann"]
    names = [p.relative_to(store.path).as_posix() for p in files]
    assert names == [entry["file"], entry["fine"]["codes"], "meta.sqlite", "norms.f32",
                     "vectors.f32"]
    plain = Store.create(store.path.parent / "plain.tiles", IDENTITY)
    add_image(plain, "/b.tif", clustered(10, 2))
    assert [p.name for p in warm.search_files(plain)] == ["meta.sqlite", "norms.f32",
                                                         "vectors.f32"]


def test_warm_reads_every_file_in_the_foreground_and_in_the_background(store: Store) -> None:
    files = warm.search_files(store)
    total = sum(p.stat().st_size for p in files)
    done = api.warm(store.path, background=False, budget=None)
    assert done.warmed == files and done.skipped == [] and done.read_bytes == total
    later = api.warm(store, budget=None)
    assert later.join(30) and later.read_bytes == total and later.warmed == files


def test_files_beyond_the_budget_are_skipped_and_smaller_ones_still_read(store: Store) -> None:
    files = warm.search_files(store)
    sizes = {p: p.stat().st_size for p in files}
    big = max(files, key=lambda p: sizes[p])
    budget = sum(sizes.values()) - sizes[big]
    w = warm.warm(store, background=False, budget=budget)
    assert w.skipped == [big] and w.warmed == [p for p in files if p != big]
    assert w.read_bytes == budget
    assert warm.warm(store, background=False, budget=0).warmed == []
    assert warm.available_memory() is None or warm.available_memory() > 0


def test_a_stopped_warmer_reads_no_further_file(store: Store) -> None:
    w = warm.Warmer(warm.search_files(store), None)
    w.stop()
    assert w.run().warmed == [] and w.read_bytes == 0


@pytest.mark.parametrize("version", [1, 2])
def test_a_memory_cgroup_limit_bounds_the_budget(tmp_path: Path, version: int) -> None:
    if version == 1:
        folder = tmp_path / "memory" / "box"
        files = ("memory.limit_in_bytes", "memory.usage_in_bytes")
        line = "4:memory:/box\n1:cpu:/\n"
    else:
        folder, files, line = tmp_path / "box", ("memory.max", "memory.current"), "0::/box\n"
    folder.mkdir(parents=True)
    proc = tmp_path / "cgroup"
    proc.write_text(line)
    (folder / files[0]).write_text("8000000000\n")
    (folder / files[1]).write_text("3000000000\n")
    assert warm.cgroup_room(tmp_path, proc) == 5_000_000_000
    (folder / files[0]).write_text("max\n" if version == 2 else f"{2**63 - 4096}\n")
    assert warm.cgroup_room(tmp_path, proc) is None
    assert warm.cgroup_room(tmp_path, tmp_path / "missing") is None
