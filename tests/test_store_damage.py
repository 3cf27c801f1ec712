"""Damaged stores: every open validates, a refused command changes no byte, `check` reports and
`check --repair` recovers what can be recovered."""

import json
import os
import sqlite3

import numpy as np
import pytest
from conftest import FAKE_IDENTITY

from tilesearch import api
from tilesearch.errors import ModelMismatchError, StoreError
from tilesearch.ingest import open_or_create_store
from tilesearch.models.base import ModelIdentity
from tilesearch.store import Store


def snapshot(path):
    """Every file of a store folder and its bytes, but for SQLite's and the lock's
    bookkeeping (the lock file, the shared-memory index and an empty write-ahead log)."""
    return {f.name: f.read_bytes() for f in path.rglob("*") if f.is_file()
            and f.name not in (".lock", "meta.sqlite-shm")
            and not (f.name == "meta.sqlite-wal" and f.stat().st_size == 0)}


def edit_manifest(path, **changes):
    m = json.loads((path / "manifest.json").read_text())
    for key, value in changes.items():
        if key.startswith("model_"):
            m["model"][key[6:]] = value
        elif value is None:
            m.pop(key, None)
        else:
            m[key] = value
    (path / "manifest.json").write_text(json.dumps(m))


class _Model:
    def __init__(self, identity):
        self.identity = identity


def test_a_refused_index_changes_no_byte(closed_store):
    """A model mismatch is found before anything is written: the uncommitted tail of an
    interrupted append stays too (it is cut only right before the next append)."""
    with open(closed_store / "vectors.f32", "ab") as f:
        f.write(np.ones((2, 8), np.float32).tobytes())
    before = snapshot(closed_store)
    other = ModelIdentity("resnet18", "a" * 64, 512, "imagenet")
    with pytest.raises(ModelMismatchError):
        open_or_create_store(closed_store, _Model(other), tile_size=None, stride=None,
                             max_invalid=None)
    with pytest.raises(StoreError, match="tile_size=256, not 512"):
        open_or_create_store(closed_store, _Model(FAKE_IDENTITY), tile_size=512, stride=None,
                             max_invalid=None)
    assert snapshot(closed_store) == before


def test_a_dimension_edited_in_the_manifest_is_caught_before_any_write(closed_store):
    """The finding: a manifest claiming 1280-d over 1904-d vectors had the vectors cut."""
    edit_manifest(closed_store, model_dim=6)
    before = snapshot(closed_store)
    for writable in (False, True):
        with pytest.raises(StoreError, match="do not match their norms"):
            Store.open(closed_store, writable=writable)
    edit_manifest(closed_store, model_dim=0)
    with pytest.raises(StoreError, match="dim must be a positive integer"):
        api.build_index(closed_store, force=True)
    before["manifest.json"] = (closed_store / "manifest.json").read_bytes()
    assert snapshot(closed_store) == before


@pytest.mark.parametrize(("damage", "message"), [
    (lambda p: (p / "manifest.json").write_text("[1, 2]"), "not a JSON object"),
    (lambda p: (p / "manifest.json").write_text("{bad json"), "no readable manifest"),
    (lambda p: edit_manifest(p, model=None), "no 'model' object"),
    (lambda p: edit_manifest(p, tile_size="256"), "'tile_size' must be a positive integer"),
    (lambda p: edit_manifest(p, stride=0), "'stride' must be a positive integer"),
    (lambda p: edit_manifest(p, max_invalid=7), "'max_invalid' must be a number"),
    (lambda p: edit_manifest(p, vectors_file="../x"), "not a file name"),
    (lambda p: (p / "meta.sqlite").unlink(), "meta.sqlite is missing"),
    (lambda p: (p / "meta.sqlite").write_bytes(b"garbage" * 1000), "meta.sqlite is damaged"),
    (lambda p: (p / "vectors.f32").unlink(), "vectors.f32 is missing"),
    (lambda p: (p / "norms.f32").unlink(), "norms.f32 is missing"),
    (lambda p: os.truncate(p / "vectors.f32", 100), "vectors.f32 holds 100 bytes"),
    (lambda p: os.truncate(p / "norms.f32", 8), "norms.f32 holds 8 bytes"),
])
def test_damage_is_one_store_error_and_nothing_is_created(closed_store, damage, message):
    for name in ("meta.sqlite-wal", "meta.sqlite-shm"):  # as after a clean close
        (closed_store / name).unlink(missing_ok=True)
    damage(closed_store)
    before = snapshot(closed_store)
    for call in (lambda: Store.open(closed_store), lambda: api.info(closed_store),
                 lambda: api.search(closed_store, tile=0)):
        with pytest.raises(StoreError, match=message):
            call()
    assert snapshot(closed_store) == before


def test_check_reports_a_healthy_store_and_an_interrupted_append(closed_store):
    report = api.check(closed_store)
    assert report.ok and report.tiles == 24 and not report.notes
    with open(closed_store / "vectors.f32", "ab") as f:
        f.write(b"\0" * 20)
    report = api.check(closed_store)
    assert report.ok and "interrupted append" in report.notes[0]


def test_repair_forgets_tiles_whose_fingerprints_were_lost(closed_store):
    with Store.open(closed_store) as s:
        keep = np.array(s.vectors()[:20])
    with open(closed_store / "vectors.f32", "r+b") as f:
        f.truncate(20 * 8 * 4 + 10)  # 20 whole rows and a torn one
    report = api.check(closed_store)
    assert not report.ok and "fewer than" in report.problems[0]
    assert "--repair" in report.problems[-1]
    report = api.check(closed_store, repair=True)
    assert report.ok and "forgot tiles 20..23" in report.repaired[0]
    with Store.open(closed_store) as s:
        assert s.count == 20
        np.testing.assert_array_equal(s.vectors(), keep)
        statuses = {im["id"]: (im["status"], im["n_tiles"]) for im in s.images()}
    assert statuses[2] == ("indexing", 8)  # b.tif resumes on the next index
    assert api.check(closed_store).ok


def test_repair_recomputes_wrong_or_missing_norms(closed_store):
    good = (closed_store / "norms.f32").read_bytes()
    norms = np.frombuffer(good, np.float32).copy()
    norms[5] += 1.0
    (closed_store / "norms.f32").write_bytes(norms.tobytes())
    report = api.check(closed_store)
    assert not report.ok and "tile 5" in report.problems[0]
    assert api.check(closed_store, repair=True).ok
    np.testing.assert_allclose(np.fromfile(closed_store / "norms.f32", np.float32),
                               np.frombuffer(good, np.float32), rtol=1e-6)
    (closed_store / "norms.f32").unlink()
    assert not api.check(closed_store).ok
    assert api.check(closed_store, repair=True).ok
    with Store.open(closed_store) as s:
        assert s.count == 24


def test_check_names_what_cannot_be_repaired(closed_store):
    db = sqlite3.connect(closed_store / "meta.sqlite")
    db.execute("DROP TABLE failures")
    db.commit()
    db.close()
    report = api.check(closed_store, repair=True)
    assert not report.ok and "lacks the table(s) failures" in report.problems[0]
