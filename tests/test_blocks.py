"""Block recipes: tiles cut into blocks (pure arithmetic), blocks read and fingerprinted by the
indexer as tiles would be, and the default model's block graph against its per-tile one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fakes import FakeBlockModel, FakeModel, run_cli

from tilesearch.errors import ModelError
from tilesearch.ingest import index_images, open_or_create_store
from tilesearch.raster import open_image
from tilesearch.store import Store
from tilesearch.tiling import Window, block_places, group_blocks, offsets, tile_grid


def test_block_places_pair_runs_on_the_stride_and_leave_the_flush_edge_alone() -> None:
    # 900 px: tiles at 0, 128, ..., 640 on the stride, then 644 flush with the edge
    assert block_places(900, 256, 128, 2) == {
        0: (0, 0), 128: (0, 1), 256: (256, 0), 384: (256, 1), 512: (512, 0), 640: (512, 1),
        644: (644, 0)}
    # an odd run: the last tile on the stride has a block of its own
    assert block_places(768, 256, 128, 2)[512] == (512, 0)
    assert block_places(256, 256, 128, 2) == {0: (0, 0)}
    assert block_places(1000, 256, 128, 1) == {o: (o, 0) for o in offsets(1000, 256, 128)}


def test_a_tiles_block_does_not_depend_on_which_tiles_are_grouped() -> None:
    grid = tile_grid(900, 700, 256, 128)
    full = [(w, b.window, place) for b in group_blocks(grid, 900, 700, 256, 128, 2)
            for place, w in b.tiles]
    whole = {w: (block, place) for w, block, place in full}
    some = grid[3::4][::-1]  # a resumed run's leftovers, in any order
    part = [(w, b.window, place) for b in group_blocks(some, 900, 700, 256, 128, 2)
            for place, w in b.tiles]
    assert part == [t for t in full if t[0] in set(some)]  # the same blocks, the same order
    assert len(whole) == len(grid)
    for w, (block, place) in whole.items():  # each tile sits at its place in its block
        i, j = divmod(place, 2)
        assert (w.col_off - block.col_off, w.row_off - block.row_off) == (j * 128, i * 128)
        assert block.width == block.height == 384


def test_a_block_read_past_the_edge_is_filled_and_invalid(make_geotiff, tmp_path: Path) -> None:
    img = make_geotiff(tmp_path / "a.tif", 500, 400, crs="EPSG:32633")
    with open_image(img) as src:
        inside, _ = src.read_block(Window(256, 128, 244, 272))
        pixels, valid = src.read_padded(256, 128, 384, fill=128)
        half, half_valid = src.read_padded(256, 128, 192, 0.5)
    np.testing.assert_array_equal(pixels[:272, :244], inside)
    assert valid[:272, :244].all() and not valid[272:].any() and not valid[:, 244:].any()
    assert (pixels[272:] == 128).all() and (pixels[:, 244:] == 128).all()
    assert half.shape == (192, 192, 3) and half_valid[:136, :122].all()
    assert not half_valid[136:].any() and not half_valid[:, 122:].any()


@pytest.mark.parametrize("scale", [256 / 141, 256 / 427])  # upsampled 1.8x, decimated
def test_a_tile_read_from_its_corner_in_a_block_is_the_tile(make_geotiff, tmp_path: Path,
                                                            scale: float) -> None:
    """Where the store's scale rounds the tile to an odd span, a tile at a block's corner gets
    the pixels and validity a tile read alone has: exactly where the block is cut by the
    image's edges (no strip of fill), to within resampling noise inside the image."""
    img = make_geotiff(tmp_path / "a.tif", 900, 700, crs="EPSG:32633", alpha=True)
    span = round(256 / scale)
    with open_image(img) as src:
        for col, row in [(900 - span, 700 - span), (0, 0), (span // 2, 700 - span)]:
            alone, ok = src.read_scaled(Window(col, row, span, span), 256, 256)
            block, valid = src.read_padded(col, row, 384, scale, 128)
            tile, tile_ok = block[:256, :256], valid[:256, :256]
            if col + span == 900:  # flush with both edges: read alone, as a tile is
                np.testing.assert_array_equal(tile, alone)
                np.testing.assert_array_equal(tile_ok, ok)
            diff = np.abs(tile.astype(int) - alone)
            assert diff.mean() < 2.0 and (tile_ok != ok).mean() < 0.005


def _store(path: Path, model, **kw) -> Store:
    return open_or_create_store(path, model, tile_size=None, stride=None, max_invalid=None, **kw)


def _by_window(store: Store) -> dict:
    metas = store.tiles(range(store.count))
    vecs = np.asarray(store.vectors())
    return {(Path(m.source).name, m.window): (round(m.valid_fraction, 9), m.lonlat,
                                              vecs[m.tile_id]) for m in metas}


def _assert_same(a: dict, b: dict, atol: float = 0.0) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert a[key][:2] == b[key][:2], key
        np.testing.assert_allclose(a[key][2], b[key][2], atol=atol, rtol=0)


@pytest.fixture
def images(tmp_path: Path, make_geotiff) -> list[Path]:
    """An odd-sized image with a masked corner, and one whose grids leave flush edges."""
    return [make_geotiff(tmp_path / "a.tif", 900, 700, crs="EPSG:32633", seed=1, alpha=True),
            make_geotiff(tmp_path / "b.tif", 768, 530, crs="EPSG:32633", seed=2)]


@pytest.mark.parametrize("readers", [1, 3])
def test_blocks_give_the_store_tiles_give(tmp_path: Path, images: list[Path],
                                          readers: int) -> None:
    with _store(tmp_path / "tiles.tiles", FakeModel()) as s:
        index_images(images, s, FakeModel(), batch_size=8)
        expected = _by_window(s)
    model = FakeBlockModel()
    with _store(tmp_path / "blocks.tiles", model) as s:
        report = index_images(images, s, model, batch_size=8, readers=readers)
        got = _by_window(s)
        windows = s.windows()
    assert len(report.indexed) == 2 and not report.failed
    assert len(expected) >= 40
    _assert_same(got, expected, atol=1e-6)
    second = windows[windows[:, 0] == windows[-1, 0]]  # b.tif (unmasked), in block order
    assert [tuple(w) for w in second[:6, 1:3].tolist()] == [
        (0, 0), (128, 0), (0, 128), (128, 128), (256, 0), (384, 0)]


@pytest.mark.parametrize(("pixel_size", "span"), [(0.3, 427), (0.5 / 0.551, 141)])
def test_blocks_read_at_the_stores_ground_resolution(tmp_path: Path, make_geotiff,
                                                     pixel_size: float, span: int) -> None:
    """An image read decimated (or upsampled) into a store: its blocks are resampled whole,
    which moves a tile's pixels by under a pixel against reading it on its own, and keeps
    every tile's validity, at the image's edges too."""
    from tilesearch.ingest import Scaling

    img = make_geotiff(tmp_path / "img.tif", 1200, 1000, crs="EPSG:32633",
                       pixel_size=pixel_size, alpha=True)
    stores = {}
    for model in (FakeModel(), FakeBlockModel()):
        with _store(tmp_path / f"{model.identity.recipe}.tiles", model, gsd=0.5) as s:
            index_images([img], s, model, batch_size=8, scaling=Scaling(max_upsample=2.0))
            stores[model.identity.recipe] = _by_window(s)
    tiles, blocks = stores["plain"], stores["rot4-128-blocks"]
    assert tiles.keys() == blocks.keys() and len(tiles) >= 15
    assert next(iter(tiles))[1].width == span  # 256 px at 0.5 m
    diff = max(float(np.abs(tiles[k][2] - blocks[k][2]).max()) for k in tiles)
    assert 0 < diff < 0.05
    valid = max(abs(tiles[k][0] - blocks[k][0]) for k in tiles)
    assert valid < 0.01


def test_an_interrupted_block_run_resumes_to_the_same_store(tmp_path: Path,
                                                            images: list[Path]) -> None:
    model = FakeBlockModel()
    with _store(tmp_path / "whole.tiles", model) as s:
        index_images(images, s, model, batch_size=8)
        whole, whole_ids = _by_window(s), s.windows().tolist()

    class Killed(BaseException):
        pass

    def progress(total: int):
        def tick(done: int, failed: int) -> None:
            if done:
                raise Killed
        return tick

    with _store(tmp_path / "cut.tiles", model) as s, pytest.raises(Killed):
        index_images(images, s, model, batch_size=8, progress=progress)
    with Store.open(tmp_path / "cut.tiles") as s:
        assert 0 < s.count < len(whole)
    with _store(tmp_path / "cut.tiles", model) as s:
        index_images(images, s, model, batch_size=8)
        _assert_same(_by_window(s), whole)
        assert s.windows().tolist() == whole_ids  # same tile ids


def test_a_stride_the_blocks_cannot_hold_is_refused_before_anything(
        tmp_path: Path, images: list[Path], capsys, monkeypatch) -> None:
    with pytest.raises(ModelError, match="multiples of 16 px"):
        open_or_create_store(tmp_path / "s.tiles", FakeBlockModel(), tile_size=None,
                             stride=100, max_invalid=None)
    assert not (tmp_path / "s.tiles").exists()
    monkeypatch.setattr("tilesearch.api.load_fingerprinter", lambda *a, **kw: FakeBlockModel())
    code, _, err = run_cli(["index", images[0], "--store", tmp_path / "t.tiles", "--stride",
                            "256", "-q"], capsys, monkeypatch)
    assert code == 2 and "stride below the tile size" in err and "--recipe rot4-128" in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "t.tiles").exists()


# --- the default model's block graph --------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def _model_cache(tmp_path_factory: pytest.TempPathFactory):
    """A fresh export cache for this module: the block graph is exported from this code."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TILESEARCH_CACHE", str(tmp_path_factory.mktemp("tilesearch-cache")))
        yield


@pytest.fixture(scope="module")
def lite0():
    from tilesearch.models import load_model

    return load_model(runtime="openvino", threads=2), load_model(
        runtime="openvino", threads=2, recipe="rot4-128")


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b = b / np.linalg.norm(b, axis=-1, keepdims=True)
    return a @ b.T


def _quadrants() -> np.ndarray:
    """One 384 px block whose four tiles differ: a different texture in each 192 px quarter."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:192, 0:192]
    parts = [np.sin(xx / 6.0) * 90 + 128, np.cos(yy / 11.0) * 90 + 128,
             ((xx // 24 + yy // 24) % 2) * 160 + 40, np.hypot(xx - 96, yy - 96) % 40 * 5]
    q = [(np.stack([p, p * 0.8, 255 - p], -1) + rng.normal(0, 8, (192, 192, 3)))
         for p in parts]
    block = np.concatenate([np.concatenate(q[:2], 1), np.concatenate(q[2:], 1)], 0)
    return block.clip(0, 255).astype(np.uint8)[None]


def _tiles_of(block: np.ndarray) -> np.ndarray:
    return np.stack([block[0, i:i + 256, j:j + 256] for i in (0, 128) for j in (0, 128)])


def test_default_model_shares_blocks_and_fingerprints_single_tiles_as_rot4(lite0) -> None:
    blocks_model, tiles_model = lite0
    assert blocks_model.identity.recipe == "rot4-128-blocks"
    assert tiles_model.identity.recipe == "rot4-128"
    assert blocks_model.identity != tiles_model.identity  # stores never mix the two
    block = _quadrants()
    tiles = _tiles_of(block)
    np.testing.assert_allclose(blocks_model.embed(tiles), tiles_model.embed(tiles), atol=1e-5)
    graph = blocks_model.for_blocks(128)
    assert graph.tile_size == 384 and blocks_model.for_blocks(128) is graph
    shared = graph.embed(block)
    assert shared.shape == (4, tiles_model.identity.dim)
    cos = _cos(shared, tiles_model.embed(tiles))
    assert (cos.argmax(axis=1) == np.arange(4)).all()  # each output is its own tile's
    assert np.diag(cos).min() > 0.95 and np.diag(cos).max() < 0.99999  # moved, a little
    # turning the block turns its grid of tiles: tile (0, 1) goes to (0, 0), and so on
    turned = graph.embed(np.rot90(block, 1, axes=(1, 2)).copy())
    np.testing.assert_allclose(turned, shared[[1, 3, 0, 2]], atol=2e-5)
    with pytest.raises(ModelError, match="multiples of 16 px"):
        blocks_model.for_blocks(120)
    with pytest.raises(ModelError, match="one by one"):
        tiles_model.for_blocks(128)


@pytest.mark.parametrize("runtime", ["onnxruntime", "torch"])
def test_every_runtime_runs_the_block_graph(lite0, runtime: str) -> None:
    from tilesearch.models import available_runtimes, load_model

    if runtime not in available_runtimes():
        pytest.skip(f"{runtime} is not installed")
    block = np.concatenate([_quadrants(), _quadrants()[:, ::-1].copy()])
    want = lite0[0].for_blocks(128).embed(block)
    got = load_model(runtime=runtime, threads=2).for_blocks(128).embed(block)
    assert got.shape == (8, want.shape[1])
    np.testing.assert_allclose(got, want, atol=2e-4)


def test_a_tiling_without_blocks_falls_back_to_rot4(tmp_path: Path, make_geotiff) -> None:
    import tilesearch

    img = make_geotiff(tmp_path / "a.tif", 600, 500, crs="EPSG:32633")
    report = tilesearch.index(img, tmp_path / "s.tiles", stride=256)
    assert report.tiles_added == 6  # 3 x 2 windows, the last ones flush with the edges
    with Store.open(tmp_path / "s.tiles") as s:
        assert s.identity.recipe == "rot4-128"


def test_models_that_cannot_be_split_default_to_rot4() -> None:
    from tilesearch.models import default_recipe, load_model

    assert default_recipe("efficientnet-lite0-multilevel") == "rot4-128-blocks"
    assert default_recipe("efficientnet-lite0") == "rot4-128"
    with pytest.raises(ModelError, match="use --recipe rot4-128 with efficientnet-lite0"):
        load_model("efficientnet-lite0", recipe="rot4-128-blocks")


def test_one_tile_as_a_block_is_the_tile_recipe() -> None:
    """A 1 x 1 block graph is `rot4-128` exactly: the crops line up with the tile's cells."""
    import torch

    from tilesearch.models.blocks import block_module
    from tilesearch.models.recipes import apply_recipe
    from tilesearch.models.registry import _REGISTRY

    entry = _REGISTRY["efficientnet-lite0-multilevel"]
    net = entry.build(entry.locate(None))
    x = torch.from_numpy(np.random.default_rng(1).integers(0, 256, (2, 256, 256, 3),
                                                           dtype=np.uint8))
    with torch.inference_mode():
        one = block_module(net, "rot4-128-blocks", 256, 128, per_side=1)(x)
        tile = apply_recipe(net, "rot4-128")(x)
    np.testing.assert_allclose(one.numpy(), tile.numpy(), atol=1e-5)


def test_an_image_query_finds_its_tile_among_block_fingerprints(tmp_path: Path,
                                                                make_geotiff) -> None:
    from PIL import Image

    import tilesearch

    img = make_geotiff(tmp_path / "a.tif", 900, 700, crs="EPSG:32633", seed=5)
    report = tilesearch.index(img, tmp_path / "s.tiles")
    assert report.tiles_added == 35
    with Store.open(tmp_path / "s.tiles") as s:
        assert s.identity.recipe == "rot4-128-blocks"
    with open_image(img) as src:
        pixels, _ = src.read_block(Window(384, 256, 256, 256))
    Image.fromarray(pixels).save(tmp_path / "q.png")
    hits = tilesearch.search(tmp_path / "s.tiles", image=tmp_path / "q.png", k=3).hits
    assert hits[0].tile.window == Window(384, 256, 256, 256)
