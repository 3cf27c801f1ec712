"""The approximate search index: built from the store, checked against exact search."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from tilesearch import ann, api
from tilesearch import retrieval as knn
from tilesearch.cli import cli
from tilesearch.errors import QueryError, StoreError
from tilesearch.models.base import ModelIdentity
from tilesearch.records import ImageInfo, Tile
from tilesearch.retrieval import index_recall, nearest, ranked
from tilesearch.store import Store, unit
from tilesearch.tiling import Window

DIM = 32
CODEC = "SQ8"
"""Near-lossless codes: checks the plumbing (re-ranking, merging, filters) exactly."""
PCA = "PCA16,SQ8"
IDENTITY = ModelIdentity("fake", "0" * 64, DIM, "none")


def clustered(n: int, seed: int) -> np.ndarray:
    """Non-negative vectors around 20 centres, varying mostly along 8 directions (like pooled
    CNN features, whose variance sits in few principal components)."""
    rng = np.random.default_rng(seed)
    centres = rng.gamma(0.7, 1.0, (20, DIM))
    basis = np.random.default_rng(0).normal(0, 1, (8, DIM)) / np.sqrt(DIM)
    x = centres[rng.integers(0, 20, n)] + rng.normal(0, 0.5, (n, 8)) @ basis
    x += rng.normal(0, 0.01, (n, DIM))
    return np.maximum(x, 0).astype(np.float32)


def add_image(store: Store, name: str, vectors: np.ndarray, cols: int = 50) -> None:
    """Append `vectors` as the tiles of a fake image laid out on a 128 px grid."""
    rows = -(-len(vectors) // cols)
    info = ImageInfo(path=name, width=(cols + 1) * 128, height=(rows + 1) * 128, band_count=3,
                     dtype="uint8", bands=(1, 2, 3), crs=None, transform=None, mask="zero",
                     size_bytes=0, mtime=0.0)
    image_id = store.begin_image(info)
    empty, valid = np.empty((0, 0, 3), np.uint8), np.ones((1, 1), bool)
    tiles = [Tile(source=name, window=Window((i % cols) * 128, (i // cols) * 128, 256, 256),
                  pixels=empty, valid=valid) for i in range(len(vectors))]
    store.append(image_id, tiles, vectors)
    store.finish_image(image_id)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store.create(tmp_path / "s.tiles", IDENTITY)
    add_image(s, "/a.tif", clustered(3000, 1))
    return s


def test_small_store_gets_no_index_unless_forced(store: Store) -> None:
    assert ann.build(store, codec=CODEC).action == "none"
    assert ann.load(store) is None
    report = ann.build(store, codec=CODEC, force=True)
    assert (report.action, report.tiles, report.code_bytes) == ("built", 3000, 32)
    assert ann.load(store) is not None


@pytest.mark.parametrize(("codec", "floor"), [(CODEC, 0.99), (PCA, 0.8)])
def test_recall_against_exact_oracle(store: Store, codec: str, floor: float) -> None:
    queries = clustered(50, 9)
    ann.build(store, codec=codec, force=True)
    assert index_recall(store, queries, 10) >= floor  # codes + exact re-rank
    ids, d = ranked(store, queries[0], 10)
    exact_ids, _ = ranked(store, queries[0], 10, exact=True)
    assert np.all(np.diff(d) >= 0)
    assert len(set(ids) & set(exact_ids)) >= 9


def test_ivf_index_above_threshold(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ann.spec, "IVF_ABOVE", 1000)
    report = ann.build(store, codec=CODEC, nprobe=12, force=True)
    assert report.factory == "IVF64,SQ8"
    index = ann.load(store)
    assert index is not None and index.spec.is_ivf and index.spec.nprobe == 12
    assert index_recall(store, clustered(30, 5), 10) >= 0.95
    v = store.vectors()[[5, 2999]]
    dec = index.decode(np.array([5, 2999]))  # IVF codes decode by id, through a direct map
    cos = (dec * v).sum(1) / np.linalg.norm(v, axis=1) / np.linalg.norm(dec, axis=1)
    assert cos.min() > 0.999
    assert ann.choose_spec(10_000_000).factory == "PCA256,L2norm,IVF4096,SQ6"
    assert ann.choose_spec(180_000).factory == "PCA256,L2norm,IVF512,SQ6"


def test_appended_tiles_are_searched_then_added_incrementally(store: Store) -> None:
    ann.build(store, codec=CODEC, force=True)
    extra = clustered(500, 2) + 5.0  # far from everything indexed so far
    add_image(store, "/b.tif", extra)
    ids, _ = ranked(store, extra[0], 5)
    assert all(i >= 3000 for i in ids)  # found by the exact scan of the tail
    report = ann.build(store, codec=CODEC)
    assert (report.action, report.tiles) == ("extended", 3500)
    index = ann.load(store)
    assert index is not None and index.count == 3500
    ids2, _ = ranked(store, extra[0], 5)
    assert set(ids2) == set(ids)
    assert ann.build(store, codec=CODEC).action == "up to date"


def test_filters_apply_inside_the_index(store: Store) -> None:
    ann.build(store, codec=CODEC, force=True)
    allowed = np.zeros(store.count, bool)
    allowed[1000:1100] = True
    ids, _ = ranked(store, clustered(1, 3)[0], 20, allowed=allowed)
    assert len(ids) == 20 and all(1000 <= i < 1100 for i in ids)


def test_drop_full_keeps_codes_only_and_still_searches(store: Store, tmp_path: Path) -> None:
    q = clustered(1, 4)[0]
    before = [h.tile.tile_id for h in nearest(store, q, 10)]
    size = store.bytes_on_disk()
    ann.build(store, codec=PCA, force=True, keep_full=False)
    assert store.full_from == 3000 and store.bytes_on_disk() < size / 2
    with pytest.raises(StoreError, match="dropped"):
        store.vectors()
    store.close()
    s = Store.open(tmp_path / "s.tiles", writable=True)
    after = [h.tile.tile_id for h in nearest(s, q, 10)]
    assert len(set(before) & set(after)) >= 4  # codes alone: approximate (chance: 0.03)
    with pytest.raises(QueryError, match="cosine"):
        nearest(s, q, 5, metric="euclidean")
    hit = api.search(s, tile=10, k=3)  # a tile query decodes the tile's code
    assert len(hit.hits) == 3
    add_image(s, "/c.tif", clustered(200, 6) + 5.0)  # appends after a drop go to the new file
    assert ranked(s, clustered(1, 6)[0] + 5.0, 3)[0].min() >= 3000
    with pytest.raises(StoreError, match="retrained"):
        ann.build(s, codec=PCA, rebuild=True)
    assert ann.build(s, keep_full=False).action == "extended"
    assert s.full_from == 3200
    s.close()


def test_large_k_visits_more_lists_and_reranks_more(store: Store,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ann.spec, "IVF_ABOVE", 1000)
    ann.build(store, codec=PCA, nprobe=2, force=True)
    index = ann.load(store)
    assert index is not None
    assert [index.nprobe_for(m) for m in (1, 10, 251, 600, 10**6)] == [2, 2, 22, 52, 64]
    queries = clustered(20, 5)
    large = index_recall(store, queries, 600)  # 600 of 3,000 tiles: most lists hold some
    monkeypatch.setattr(ann.spec, "LARGE_M", 10**9)  # the lists of a small k only
    monkeypatch.setattr(ann.spec, "RERANK_FACTOR", 1.0)
    assert index_recall(store, queries, 600) < large - 0.05
    assert large >= 0.95


def test_paging_and_cli(store: Store, tmp_path: Path) -> None:
    ann.build(store, codec=CODEC, force=True)
    path = store.path
    store.close()
    full = api.search(path, tile=100, k=8)
    page = api.search(path, tile=100, k=3, offset=4)
    assert [h.tile.tile_id for h in page.hits] == [h.tile.tile_id for h in full.hits[4:7]]
    assert [h.rank for h in page.hits] == [5, 6, 7]
    exact = api.search(path, tile=100, k=8, exact=True)
    assert [h.tile.tile_id for h in exact.hits][:5] == [h.tile.tile_id for h in full.hits][:5]
    out = CliRunner().invoke(cli, ["build-index", str(path), "--codec", CODEC])
    assert out.exit_code == 0 and "up to date" in out.output
    out = CliRunner().invoke(cli, ["info", str(path)])
    assert "search index: SQ8 over 3,000 tiles, 32 bytes a tile" in out.output


def test_outdated_index_is_refused_until_rebuilt(store: Store) -> None:
    ann.build(store, codec=CODEC, force=True)
    entry = dict(store.manifest["ann"])
    entry.pop("space")
    store.set_manifest("ann", entry)
    with pytest.raises(StoreError, match=r"older tilesearch.*--rebuild"):
        ann.load(store)
    with pytest.raises(StoreError, match="older tilesearch"):
        ann.build(store, codec=CODEC)
    assert ann.build(store, codec=CODEC, rebuild=True).action == "built"
    assert ann.load(store) is not None


def test_other_metrics_fall_back_to_exact_while_full_vectors_are_kept(store: Store) -> None:
    q = clustered(1, 8)[0]
    exact = ranked(store, q, 10, "euclidean", exact=True)
    ann.build(store, codec=CODEC, force=True)
    ids, d = ranked(store, q, 10, "euclidean")
    assert np.array_equal(ids, exact[0]) and np.allclose(d, exact[1])


def test_refining_codec_reranks_by_finer_codes(store: Store, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Codes-only stores: a coarse first stage proposes, full-dimension 8-bit codes decide.
    The first stage here (12 components) ranks far worse than the default codec's 256, so it
    proposes 256 candidates rather than `ann.REFINE_MIN`, from 16 lists."""
    monkeypatch.setattr(ann.spec, "IVF_ABOVE", 1000)
    monkeypatch.setattr(ann.spec, "REFINE_MIN", 256)
    queries = clustered(40, 9)
    exact = [set(ranked(store, q, 10, exact=True)[0].tolist()) for q in queries]
    coarse = Store.create(tmp_path / "coarse.tiles", IDENTITY)
    add_image(coarse, "/a.tif", store.vectors())

    def recall(s: Store) -> float:
        got = [set(ranked(s, q, 10)[0].tolist()) for q in queries]
        return float(np.mean([len(a & b) / 10 for a, b in zip(got, exact, strict=True)]))

    ann.build(coarse, codec="PCA12,SQ8", force=True, keep_full=False)
    ann.build(store, codec="PCA12,SQ8,Refine(SQ8)", nprobe=16, force=True, keep_full=False)
    index = ann.load(store)
    assert index is not None and index.spec.is_refine
    assert index.spec.factory == "PCA12,IVF64,SQ8,Refine(SQ8)"
    assert recall(coarse) < 0.5 and recall(store) >= 0.9
    allowed = np.zeros(store.count, bool)
    allowed[::7] = True
    ids, _ = ranked(store, queries[0], 10, allowed=allowed)
    assert len(ids) == 10 and all(i % 7 == 0 for i in ids)
    assert index.refiner is not None and index.refiner.mapped  # finer codes stay on disk
    fine = store.manifest["ann"]["fine"]
    codes = store.path / fine["codes"]  # streamed to their own file, not inside the index
    assert codes.stat().st_size == store.count * DIM
    assert index.path.stat().st_size < codes.stat().st_size
    assert index.code_bytes == store.manifest["ann"]["code_bytes"] == \
        index.index.sa_code_size() + DIM  # first stage (12 components, list id) + finer
    q = unit(queries[:5])
    dist, ids = index.search_batch(q, 10)
    for x, want, d in zip(q, ids, dist, strict=True):
        got = index.search(x, 10)
        assert got[0].tolist() == want.tolist() and np.allclose(got[1], d)
    spec = ann.choose_spec(10_000_000, "PCA256,SQ8,Refine(SQ8)")
    assert spec.factory == "PCA256,IVF4096,SQ8,Refine(SQ8)"
    assert spec.nprobe == ann.REFINE_NPROBE < ann.choose_spec(10_000_000).nprobe == ann.NPROBE


def test_refining_index_extends_and_rebuilds_its_code_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s = Store.create(tmp_path / "r.tiles", IDENTITY)
    x = clustered(2700, 1)
    add_image(s, "/a.tif", x[:2000])
    ann.build(s, codec="PCA12,SQ8,Refine(SQ8)", force=True)
    assert s.manifest["ann"]["nprobe"] == ann.REFINE_NPROBE
    asked: list[int] = []  # candidates cost reads from disk: nearest asks few first
    monkeypatch.setattr(knn.ranking, "ranked",
                        lambda *a, **kw: asked.append(a[2]) or ranked(*a, **kw))
    assert len(nearest(s, x[5], 5)) == 5 and asked[0] == ann.REFINE_MIN
    monkeypatch.undo()
    first = dict(s.manifest["ann"]["fine"])
    add_image(s, "/b.tif", x[2000:])
    assert ann.build(s).action == "extended"
    assert s.manifest["ann"]["fine"] == first  # appended in place
    assert (s.path / first["codes"]).stat().st_size == 2700 * DIM
    index = ann.load(s)
    assert index is not None and index.count == 2700
    dec = index.decode(np.arange(2000, 2700))
    cos = (dec * unit(s.vectors()[2000:])).sum(1)  # the appended rows' own codes
    assert np.median(cos) > 0.999
    (s.path / "ann" / "fine-1.codes").write_bytes(b"left by a crashed build")
    ann.build(s, rebuild=True)
    now = s.manifest["ann"]["fine"]
    assert now != first and not (s.path / first["codes"]).exists()
    assert sorted(p.name for p in (s.path / "ann").iterdir()) == sorted(
        [Path(s.manifest["ann"]["file"]).name, Path(now["codec"]).name,
         Path(now["codes"]).name])
    assert s.manifest["ann"]["nprobe"] == ann.REFINE_NPROBE  # kept while the codec stays
    ann.build(s, codec="PCA12,SQ8", rebuild=True)
    assert s.manifest["ann"]["nprobe"] == ann.NPROBE and "fine" not in s.manifest["ann"]


def test_finer_codes_take_a_power_of_two_each_and_pre_release_layouts_are_refused(
        tmp_path: Path) -> None:
    """Rows are padded so that no code straddles two pages (one read a candidate); a file
    written packed (no stride in the manifest, as pre-release versions did) is refused with
    what to do, and so is one FAISS IndexRefine file."""
    import faiss

    s = Store.create(tmp_path / "p.tiles", IDENTITY)
    x = clustered(2000, 1)
    add_image(s, "/a.tif", x)
    ann.build(s, codec="PCA12,SQ8,Refine(SQ6)", force=True)  # 6 bits x 32 dims: 24 bytes
    entry = s.manifest["ann"]
    codes = s.path / entry["fine"]["codes"]
    assert entry["fine"]["stride"] == 32 and codes.stat().st_size == 2000 * 32
    index = ann.load(s)
    assert index is not None and index.refiner is not None
    dec = index.decode(np.arange(2000))
    assert np.median((dec * unit(x)).sum(1)) > 0.999
    del index
    rows = np.fromfile(codes, np.uint8).reshape(2000, 32)
    assert not rows[:, 24:].any()  # the padding
    s.set_manifest("ann", {**entry, "fine": {k: v for k, v in entry["fine"].items()
                                             if k != "stride"}})
    with pytest.raises(StoreError, match=r"pre-release tilesearch.*--rebuild"):
        ann.load(s)
    whole = faiss.index_factory(DIM, "PCA12,SQ8,Refine(SQ8)", faiss.METRIC_L2)
    ann.train(whole, unit(x))
    whole.add(unit(x))
    faiss.write_index(whole, str(s.path / "ann" / "old.faiss"))
    s.set_manifest("ann", {"file": "ann/old.faiss", "space": ann.spec.SPACE,
                           "factory": "PCA12,SQ8,Refine(SQ8)", "nprobe": 16,
                           "metric": "cosine", "count": s.count, "code_bytes": 44})
    with pytest.raises(StoreError, match=r"pre-release tilesearch.*--rebuild"):
        ann.load(s)
    assert ann.build(s, rebuild=True).action == "built" and ann.load(s) is not None


def test_pca_before_l2norm_is_fitted_about_the_origin(store: Store) -> None:
    """Normalising centred projections would rank by the wrong cosine; the build's PCA is
    fitted about the origin, so re-normalised codes rank as exact cosine search does."""
    import faiss

    rng = np.random.default_rng(3)  # a common positive part plus variation in 8 directions
    x = unit((2.0 + rng.gamma(0.7, 1.0, DIM) + rng.normal(0, 0.3, (2000, 8))
                      @ rng.normal(0, 1, (8, DIM))).astype(np.float32))
    q = np.arange(0, 2000, 40)
    exact = np.argsort(-(x[q] @ x.T), axis=1)[:, :10]

    def recall(index: object) -> float:
        _, found = index.search(x[q], 10)  # type: ignore[attr-defined]
        pairs = zip(found, exact, strict=True)
        return float(np.mean([len(set(a) & set(b)) / 10 for a, b in pairs]))

    ours = faiss.index_factory(DIM, "PCA9,L2norm,Flat", faiss.METRIC_L2)
    ann.train(ours, x)
    ours.add(x)
    centred = faiss.index_factory(DIM, "PCA9,L2norm,Flat", faiss.METRIC_L2)
    centred.train(x)  # FAISS's own: centred, then normalised
    centred.add(x)
    assert np.abs(faiss.vector_to_array(ann.building._first_pca(ours, faiss).mean)).max() < 1e-4
    assert recall(ours) >= 0.95 > recall(centred) + 0.1
    report = ann.build(store, codec="PCA16,L2norm,SQ6", force=True)
    assert report.code_bytes == 12  # 16 components of 6 bits
    assert index_recall(store, clustered(30, 5), 10) >= 0.8


def test_gpus_train_the_lists_and_search_large_batches_where_faiss_has_them(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """With faiss-gpu and a GPU, k-means and large unfiltered batches go to `index_cpu_to_all_
    gpus` (here a CPU copy stands in for the GPU one, so results must not change); filtered or
    small searches stay on the CPU, and a GPU that FAISS cannot use falls back to the CPU."""
    import faiss

    from tilesearch.ann import gpu as ann_gpu

    monkeypatch.setattr(ann.spec, "IVF_ABOVE", 1000)
    queries = unit(clustered(12, 9))
    ann.build(store, codec=PCA, force=True)
    cpu = ann.load(store)
    assert cpu is not None
    want = cpu.search_batch(queries, 10)
    moved: list[str] = []

    def to_gpus(index: object) -> object:
        moved.append(type(faiss.downcast_index(index)).__name__)
        return faiss.clone_index(index)

    monkeypatch.setattr(faiss, "get_num_gpus", lambda: 1)
    monkeypatch.setattr(faiss, "index_cpu_to_all_gpus", to_gpus)
    monkeypatch.setattr(ann_gpu, "BATCH_MIN", 8)
    ann.build(store, codec=PCA, rebuild=True)
    assert moved == ["IndexFlatL2"]  # the k-means of the inverted lists
    index = ann.load(store)
    assert index is not None
    got = index.search_batch(queries, 10)
    assert moved[1:] == ["IndexPreTransform"]  # the index, copied once for large batches
    assert got[1].tolist() == want[1].tolist() and np.allclose(got[0], want[0])
    index.search_batch(queries[:4], 10)
    index.search_batch(queries, 10, allowed=np.ones(store.count, bool))
    assert len(moved) == 2  # small and filtered batches stay on the CPU

    def broken(index: object) -> object:
        raise RuntimeError("no GPU implementation")

    monkeypatch.setattr(faiss, "index_cpu_to_all_gpus", broken)
    ann.build(store, codec=PCA, rebuild=True)
    fallback = ann.load(store)
    assert fallback is not None
    assert fallback.search_batch(queries, 10)[1].tolist() == want[1].tolist()


@pytest.mark.parametrize("codec", ["PCA16,L2norm,SQ8", "SQ8"])
def test_the_head_asked_for_at_load_covers_all_before_the_lists(
        store: Store, codec: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import faiss

    monkeypatch.setattr(ann.spec, "IVF_ABOVE", 1000)
    ann.build(store, codec=codec, force=True)
    asked: list[int] = []
    monkeypatch.setattr(ann.index, "prefetch_head", lambda path, n: asked.append(n))
    index = ann.load(store)
    assert index is not None and asked == [ann.head_bytes(index.spec.factory, DIM)]
    ivf = faiss.extract_index_ivf(index.base)
    before_lists = index.path.stat().st_size - index.count * (ivf.code_size + 8)
    assert 0 <= asked[0] - (1 << 20) - before_lists <= 2048  # and 1 MB to spare


def test_the_index_entry_is_typed_and_a_damaged_one_says_rebuild(store: Store) -> None:
    ann.build(store, codec=CODEC, force=True)
    entry = ann.IndexEntry.of(store)
    assert entry is not None and entry.count == store.count and entry.fine is None
    assert entry.to_dict() == store.manifest["ann"]
    store.set_manifest("ann", {k: v for k, v in store.manifest["ann"].items() if k != "count"})
    with pytest.raises(StoreError, match=r"search-index entry is damaged.*--rebuild"):
        ann.load(store)
    assert ann.build(store, rebuild=True).action == "built"
