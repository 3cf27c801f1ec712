"""Database-side augmentation: search vectors from each tile's neighbours at other places."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import write_png
from fakes import FakeModel
from test_ann import IDENTITY, add_image, clustered

from tilesearch import ann, api
from tilesearch.ann import augment
from tilesearch.cli import cli
from tilesearch.errors import OptionError, QueryError, StoreError
from tilesearch.ingest import index_images, open_or_create_store
from tilesearch.quality import retrieval_metrics
from tilesearch.retrieval import RAW_WEIGHT, distances, index_recall, nearest, ranked
from tilesearch.store import Store


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def brute_force(store: Store, k: int, alpha: float) -> np.ndarray:
    """Every tile's augmented vector, the slow way: its k most similar non-overlapping tiles."""
    u = unit(np.asarray(store.vectors(), np.float64))
    fps = store.footprints(list(range(store.count)))
    out = np.empty_like(u)
    for i, a in enumerate(fps):
        sims = u @ u[i]
        for j, b in enumerate(fps):
            if a.image_id == b.image_id and a.window.overlaps(b.window):
                sims[j] = -np.inf
        top = np.argsort(-sims, kind="stable")[:k]
        out[i] = unit(u[i] + (np.clip(sims[top], 0, None) ** alpha) @ u[top])
    return out


def labelled_folder(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two classes of three seeded PNGs in `folder`; evaluations there use FakeModel."""
    for cls, seeds in (("fields", (1, 2, 3)), ("blobs", (7, 8, 9))):
        (folder / cls).mkdir()
        for s in seeds:
            write_png(folder / cls / f"{cls}{s}.png", 256, 256, seed=s)
    monkeypatch.setattr(api, "load_fingerprinter", lambda *a, **k: FakeModel())


@pytest.fixture
def path(tmp_path: Path) -> Path:
    """A closed store of two fake images on 128 px grids (500 tiles)."""
    with Store.create(tmp_path / "s.tiles", IDENTITY) as s:
        add_image(s, "/a.tif", clustered(300, 1), cols=20)
        add_image(s, "/b.tif", clustered(200, 2), cols=20)
    return tmp_path / "s.tiles"


def test_combine_is_the_documented_formula() -> None:
    own = np.array([[1.0, 0.0]], np.float32)
    nbrs = np.array([[[0.0, 1.0], [0.6, 0.8]]], np.float32)
    got = augment.combine(own, nbrs, np.array([[-0.2, 0.5]], np.float32), alpha=2.0)
    want = unit(np.array([1.0 + 0.25 * 0.6, 0.25 * 0.8]))
    np.testing.assert_allclose(got[0], want, rtol=1e-6)


def test_augmenting_a_labelled_set_ranks_same_class_higher() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 6, 300)
    centres = rng.gamma(1.0, 1.0, (6, 16))
    x = centres[labels] + rng.normal(0, 0.6, (300, 16))
    before = retrieval_metrics(1 - unit(x) @ unit(x).T, labels.tolist()).overall["mAP"]
    aug = augment.augment_set(x, k=10)
    after = retrieval_metrics(1 - aug @ aug.T, labels.tolist()).overall["mAP"]
    assert np.allclose(np.linalg.norm(aug, axis=1), 1, atol=1e-5)
    assert after > before + 0.05


def test_store_augmentation_skips_overlapping_tiles(path: Path) -> None:
    api.build_index(path, augment=4)  # small store: exact neighbours, no index
    store = Store.open(path)
    e = store.augmentation
    assert e is not None and (e["k"], e["count"]) == (4, 500)
    aug = np.fromfile(store.path / e["file"], np.float32).reshape(500, -1)
    np.testing.assert_allclose(aug, brute_force(store, 4, 3.0), atol=2e-5)
    q = clustered(1, 7)[0]
    np.testing.assert_allclose(distances(store, q), 1 - aug @ unit(q), atol=1e-5)
    with pytest.raises(QueryError, match="cosine"):
        ranked(store, q, 5, "euclidean")
    assert api.info(store)["augment"]["k"] == 4


def test_appended_tiles_are_raw_until_augmented_again(path: Path) -> None:
    api.build_index(path, augment=4)
    store = Store.open(path, writable=True)
    add_image(store, "/c.tif", clustered(50, 3), cols=10)
    raw = store.vectors()[500:]
    q = clustered(1, 8)[0]
    np.testing.assert_allclose(distances(store, q)[500:], 1 - unit(raw) @ unit(q), atol=1e-5)
    old = store.augmentation
    assert old is not None
    store.close()
    api.build_index(path, augment=4)
    store = Store.open(path)
    new = store.augmentation
    assert new is not None and new["count"] == 550
    assert not (store.path / old["file"]).exists()  # the previous file is replaced


def test_index_encodes_augmented_vectors_and_follows_changes(path: Path) -> None:
    api.build_index(path, codec="SQ8", augment=5, force=True)
    s = Store.open(path)
    assert s.manifest["ann"]["augment"] == s.augmentation["built"]  # type: ignore[index]
    assert index_recall(s, clustered(30, 5), 10) >= 0.95  # against exact augmented search
    s.close()
    report = api.build_index(path, augment=0)  # removed: searches compare raw fingerprints
    assert (report.action, report.factory) == ("built", "SQ8")  # retrained, same codec
    s = Store.open(path, writable=True)
    assert s.augmentation is None and not list(path.glob("augmented-*"))
    assert s.manifest["ann"]["augment"] is None
    assert ann.build(s).action == "up to date"
    q = clustered(1, 4)[0]
    np.testing.assert_allclose(distances(s, q), 1 - unit(s.vectors()) @ unit(q), atol=1e-5)


def test_drop_full_keeps_augmented_codes(path: Path) -> None:
    api.build_index(path, codec="SQ8", augment=5, force=True)
    with Store.open(path) as s:
        q = clustered(1, 9)[0]
        before = ranked(s, q, 10)[0]
    api.build_index(path, keep_full=False)
    with Store.open(path, writable=True) as s:
        assert not list(path.glob("augmented-*")) and s.full_from == 500
        assert len(set(ranked(s, q, 10)[0].tolist()) & set(before.tolist())) >= 9
        with pytest.raises(StoreError, match="dropped"):
            augment.build(s)
        with pytest.raises(StoreError, match="cannot be removed"):
            augment.remove(s)


def test_image_queries_are_expanded_into_the_augmented_space(tmp_path: Path) -> None:
    for i in range(3):
        write_png(tmp_path / f"i{i}.png", 640, 512, seed=i)
    model = FakeModel()
    with open_or_create_store(tmp_path / "s.tiles", model, tile_size=None, stride=None,
                              max_invalid=None) as s:
        index_images([tmp_path / f"i{i}.png" for i in range(3)], s, model)
    api.build_index(tmp_path / "s.tiles", augment=3)
    with Store.open(tmp_path / "s.tiles") as s:
        got = api.search(s, image=tmp_path / "i1.png", k=5, model=model)
        raw = model.embed(got.query.pixels[None])[0]  # type: ignore[index]
        want = nearest(s, raw, 5, expand=3, raw_weight=RAW_WEIGHT)
        plain = nearest(s, raw, 5)
        off = api.search(s, image=tmp_path / "i1.png", k=5, model=model, expand=0,
                         raw_weight=0)
    assert [h.tile.tile_id for h in got.hits] == [h.tile.tile_id for h in want]
    np.testing.assert_allclose([h.distance for h in got.hits], [h.distance for h in want])
    assert [h.distance for h in got.hits] != [h.distance for h in plain]
    assert [h.distance for h in off.hits] == [h.distance for h in plain]  # expansion off


def test_cli_augment_and_evaluate(path: Path, tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    out = CliRunner().invoke(cli, ["build-index", str(path), "--augment", "3"])
    assert out.exit_code == 0, out.output
    assert "augmentation: 3 neighbours" in out.output
    out = CliRunner().invoke(cli, ["info", str(path)])
    assert "augmented: 3 neighbours, alpha 3" in out.output
    assert f"searches mix in {RAW_WEIGHT:g} of the raw distance" in out.output
    labelled_folder(tmp_path, monkeypatch)
    plain = api.evaluate(tmp_path, recipe="plain")
    aug = api.evaluate(tmp_path, recipe="plain", augment=2)
    assert plain.overall != aug.overall
    out = CliRunner().invoke(cli, ["evaluate", str(tmp_path), "--augment", "2", "--json",
                                   str(tmp_path / "e.json")])
    assert out.exit_code == 0, out.output
    assert json.loads((tmp_path / "e.json").read_text())["overall"] == aug.overall
    with pytest.raises(QueryError, match="cosine"):
        api.evaluate(tmp_path, metric="euclidean", augment=2)


# --- mixing in the raw distance (--raw-weight) -----------------------------------------------


def test_raw_weight_mixes_raw_and_augmented_distances(path: Path) -> None:
    """Weight 1 ranks by the raw fingerprints alone, 0 by the augmented ones, and in between
    every hit's distance is the documented mix."""
    api.build_index(path, augment=5)
    with Store.open(path) as s:
        raw_q = s.vectors()[42]
        aug_q = s.search_rows(np.array([42]))[0]
        raw_d = 1 - unit(np.asarray(s.vectors(), np.float64)) @ unit(raw_q.astype(np.float64))
        aug_d = distances(s, aug_q)
        for w in (0.0, 0.3, 1.0):
            got = api.search(s, tile=42, k=8, raw_weight=w, suppress_overlaps=False,
                             exclude_self=False)
            ids = [h.tile.tile_id for h in got.hits]
            mixed = w * raw_d + (1 - w) * aug_d
            np.testing.assert_allclose([h.distance for h in got.hits], mixed[ids], atol=1e-5)
            assert ids[0] == 42
            assert all(a <= b + 1e-6 for a, b in zip(mixed[ids], mixed[ids][1:], strict=False))
        by_raw = api.search(s, tile=42, k=8, raw_weight=1.0)
        by_aug = api.search(s, tile=42, k=8, raw_weight=0.0)
        default = api.search(s, tile=42, k=8)  # augmented: RAW_WEIGHT
        mix = api.search(s, tile=42, k=8, raw_weight=RAW_WEIGHT)
    assert [h.tile.tile_id for h in by_raw.hits] != [h.tile.tile_id for h in by_aug.hits]
    assert [h.to_dict() for h in default.hits] == [h.to_dict() for h in mix.hits]
    assert [h.distance for h in default.hits] != [h.distance for h in by_aug.hits]
    api.build_index(path, augment=0)
    with Store.open(path) as s:  # un-augmented: the same order as weight 1 above
        plain = api.search(s, tile=42, k=8)
    assert [h.tile.tile_id for h in plain.hits] == [h.tile.tile_id for h in by_raw.hits]


def test_raw_weight_is_checked(path: Path) -> None:
    api.build_index(path, codec="SQ8", augment=5, force=True)
    with pytest.raises(OptionError, match=r"raw_weight must be from 0 to 1, not 1\.5"):
        api.search(path, tile=1, raw_weight=1.5)
    with pytest.raises(OptionError, match="unknown option 'topk'"):
        api.search(path, tile=1, topk=3)
    api.build_index(path, keep_full=False)
    with pytest.raises(QueryError, match="raw-weight 0"):
        api.search(path, tile=1, raw_weight=0.3)
    assert len(api.search(path, tile=1).hits) == 10  # the default drops the mix here


def test_evaluate_with_full_raw_weight_is_plain(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    labelled_folder(tmp_path, monkeypatch)
    plain = api.evaluate(tmp_path, recipe="plain")
    assert api.evaluate(tmp_path, recipe="plain", augment=2, raw_weight=1.0).overall \
        == plain.overall
    assert api.evaluate(tmp_path, recipe="plain", augment=2).overall \
        == api.evaluate(tmp_path, recipe="plain", augment=2, raw_weight=RAW_WEIGHT).overall
    out = CliRunner().invoke(cli, ["evaluate", str(tmp_path), "--augment", "2",
                                   "--raw-weight", "1", "--json", str(tmp_path / "e.json")])
    assert out.exit_code == 0, out.output
    assert json.loads((tmp_path / "e.json").read_text())["overall"] == plain.overall
    with pytest.raises(QueryError, match="cosine"):
        api.evaluate(tmp_path, metric="euclidean", raw_weight=0.5)
