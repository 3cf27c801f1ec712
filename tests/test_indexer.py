import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from fakes import FakeModel

from tilesearch.errors import ModelMismatchError, StoreError
from tilesearch.ingest import index_images, open_or_create_store
from tilesearch.models.base import ModelIdentity
from tilesearch.store import Store

HERE = Path(__file__).parent


def _store(path, model=None):
    return open_or_create_store(path, model or FakeModel(), tile_size=None, stride=None,
                                max_invalid=None)


def _by_window(store):
    """{(source, col, row): fingerprint} of every stored tile."""
    metas = store.tiles(range(store.count))
    vecs = store.vectors()
    return {(m.source, m.window.col_off, m.window.row_off): vecs[m.tile_id] for m in metas}


def test_bad_files_are_listed_and_do_not_stop_the_batch(tmp_path, make_geotiff, make_png):
    import rasterio

    imgs = tmp_path / "imgs"
    imgs.mkdir()
    make_geotiff(imgs / "good.tif", 600, 500, crs="EPSG:32633", alpha=True)
    make_png(imgs / "plain.png", 300, 300)
    make_geotiff(imgs / "tiny.tif", 200, 100, crs="EPSG:3857")
    with rasterio.open(make_geotiff(imgs / "blank.tif", 300, 300, crs="EPSG:3857"), "r+") as ds:
        ds.write(np.zeros((3, 300, 300), np.uint8))
    whole = make_geotiff(tmp_path / "whole.tif", 800, 800, crs="EPSG:3857")
    (imgs / "cut.tif").write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    (imgs / "text.jpg").write_text("hello")

    with _store(tmp_path / "s.tiles") as store:
        report = index_images([imgs, tmp_path / "absent"], store, FakeModel())
        assert sorted(Path(p).name for p, _ in report.indexed) == ["good.tif", "plain.png"]
        reasons = {Path(p).name: r for p, r in report.failed}
        assert set(reasons) == {"tiny.tif", "blank.tif", "cut.tif", "text.jpg", "absent"}
        assert "smaller than one 256 px tile" in reasons["tiny.tif"]
        assert "valid pixels" in reasons["blank.tif"]
        assert "corrupt" in reasons["cut.tif"] and "not a readable image" in reasons["text.jpg"]
        assert all("\n" not in r for r in reasons.values())
        assert report.ok and report.tiles_added == store.count
        assert {Path(p).name for p, _ in store.failures()} >= {"tiny.tif", "cut.tif"}
        metas = store.tiles(range(store.count))
        assert min(m.valid_fraction for m in metas) >= 0.5
        n = store.count

        again = index_images([imgs], store, FakeModel())
        assert sorted(Path(p).name for p in again.already_done) == ["good.tif", "plain.png"]
        assert again.tiles_added == 0 and store.count == n


def test_nothing_indexable_is_not_ok(tmp_path):
    (tmp_path / "x.tif").write_text("junk")
    with _store(tmp_path / "s.tiles") as store:
        report = index_images([tmp_path / "x.tif"], store, FakeModel())
    assert not report.ok and len(report.failed) == 1


def test_append_new_images_and_refuse_other_models(tmp_path, make_geotiff):
    a = make_geotiff(tmp_path / "a.tif", 600, 500, crs="EPSG:32633", seed=1)
    b = make_geotiff(tmp_path / "b.tif", 400, 400, crs="EPSG:32633", seed=2)
    with _store(tmp_path / "s.tiles") as store:
        index_images([a], store, FakeModel())
        n = store.count
    with _store(tmp_path / "s.tiles") as store:
        report = index_images([a, b], store, FakeModel())
        assert [Path(p).name for p in report.already_done] == ["a.tif"]
        assert store.count == n + 9
    other = FakeModel()
    other.identity = ModelIdentity("other", "1" * 64, 22, "x/255")
    with pytest.raises(ModelMismatchError):
        _store(tmp_path / "s.tiles", other)
    with pytest.raises(StoreError, match="stride=128, not 64"):
        open_or_create_store(tmp_path / "s.tiles", FakeModel(), tile_size=None, stride=64,
                             max_invalid=None)


KILL_SCRIPT = """
import sys
sys.path.insert(0, {here!r})
from fakes import FakeModel
from tilesearch.ingest import index_images, open_or_create_store
store = open_or_create_store({store!r}, FakeModel(), tile_size=None, stride=None,
                             max_invalid=None)
def progress(total):
    def tick(done, failed):
        print(store.count, flush=True)
    return tick
index_images({images!r}, store, FakeModel(delay=0.02), batch_size=3, progress=progress)
print("finished", flush=True)
"""


def _run_and_kill(script: str, after_lines: int, pause: float) -> int:
    """Run `script`, SIGKILL it `pause` s after its `after_lines`-th progress line; returns the
    last tile count it reported done."""
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    counts = []
    for line in proc.stdout:
        assert line.strip() != "finished", "indexing ended before the kill; lengthen the job"
        counts.append(int(line))
        if len(counts) == after_lines:
            break
    time.sleep(pause)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    return counts[-1]


@pytest.mark.slow
def test_sigkill_at_any_moment_loses_nothing_and_rerun_completes(tmp_path, make_geotiff):
    images = [str(make_geotiff(tmp_path / f"i{n}.tif", 900, 800, crs="EPSG:32633", seed=n))
              for n in range(3)]
    with _store(tmp_path / "clean.tiles") as clean:
        index_images(images, clean, FakeModel())
        expected = _by_window(clean)
    target = str(tmp_path / "killed.tiles")
    script = KILL_SCRIPT.format(here=str(HERE), store=target, images=images)
    for after_lines, pause in ((4, 0.0), (7, 0.013), (10, 0.031)):  # mid-batch and between
        reported = _run_and_kill(script, after_lines, pause)
        with Store.open(target) as s:  # opens read-only after the kill
            assert s.count >= reported
            s.tiles(range(s.count))  # every committed row is readable
    with _store(target) as s:
        index_images(images, s, FakeModel())
        got = _by_window(s)
        assert s.count == len(expected) == len(got)  # no duplicate tiles
    assert got.keys() == expected.keys()
    for key, vec in expected.items():
        np.testing.assert_allclose(got[key], vec, rtol=1e-6)


def test_several_reader_threads_give_the_same_store(tmp_path, make_geotiff):
    images = [make_geotiff(tmp_path / f"r{n}.tif", 900, 800, crs="EPSG:32633", seed=n,
                           alpha=True) for n in range(2)]
    stores = []
    for readers in (1, 3):
        with _store(tmp_path / f"s{readers}.tiles") as store:
            report = index_images(images, store, FakeModel(), batch_size=5, readers=readers)
            assert len(report.indexed) == 2
            metas = store.tiles(range(store.count))
            stores.append(([(m.source, m.window, m.valid_fraction) for m in metas],
                           np.asarray(store.vectors()).copy()))
    assert stores[0][0] == stores[1][0] and len(stores[0][0]) > 50
    np.testing.assert_array_equal(stores[0][1], stores[1][1])


class ReadAheadModel(FakeModel):
    """Takes the next batch before giving a batch's fingerprints, as OpenVINO's stream does."""

    def embed_batches(self, batches):
        held = []
        for batch in batches:
            held.append(batch)
            if len(held) > 1:
                yield self.embed(held.pop(0))
        for batch in held:
            yield self.embed(batch)


def test_a_model_running_a_batch_ahead_stores_the_same_tiles(tmp_path, make_geotiff):
    """Indexing through `embed_batches` gives the store `embed` gives, also for an image that
    breaks part-way: the batches read before the broken one are stored, as they are without
    reading ahead."""
    good = make_geotiff(tmp_path / "good.tif", 900, 800, crs="EPSG:32633", alpha=True)
    whole = make_geotiff(tmp_path / "whole.tif", 1600, 1600, crs="EPSG:3857", seed=2)
    cut = tmp_path / "cut.tif"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size * 2 // 3])
    stores = []
    for model in (FakeModel(), ReadAheadModel()):
        with _store(tmp_path / f"{type(model).__name__}.tiles") as store:
            report = index_images([good, cut], store, model, batch_size=6)
            metas = store.tiles(range(store.count))
            stores.append(([(m.source, m.window) for m in metas],
                           np.asarray(store.vectors()).copy(), report.partial, report.failed))
    (windows, vectors, partial, failed), (windows2, vectors2, partial2, failed2) = stores
    assert windows == windows2 and len(windows) > 50
    np.testing.assert_array_equal(vectors, vectors2)
    assert failed == failed2 and [Path(p).name for p, _ in failed] == ["cut.tif"]
    assert partial == partial2 and partial[0][1] > 0  # the cut image's first rows are kept
