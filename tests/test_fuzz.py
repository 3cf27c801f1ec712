"""A seeded fuzz of the command line: corrupted TIFF bytes, random manifests and damaged store
files thrown at `index`, `info`, `search`, `build-index` and `check`.

Every run must end in an exit code of 0, 1 or 2 with no traceback and no "internal error"; a
failing command must say why in one line and leave every byte of the store as it was. The
number of cases is fixed by the seed and the whole fuzz stops at a time bound.
"""

import json
import shutil
import time

import numpy as np
import pytest
from conftest import write_geotiff
from fakes import FakeModel, run_cli

from tilesearch import api

SEED = 18
CASES = 60
"""Cases of each kind (three kinds)."""
TIME_BOUND_S = 60.0


def run(args, capsys, monkeypatch):
    """`tilesearch ARGS` with the fake model; returns (exit code, stdout, stderr)."""
    return run_cli(args, capsys, monkeypatch, fake_model=True)


def snapshot(path):
    if not path.is_dir():
        return None
    return {str(f.relative_to(path)): f.read_bytes() for f in path.rglob("*") if f.is_file()
            and f.name not in (".lock", "meta.sqlite-shm")
            and not (f.name == "meta.sqlite-wal" and f.stat().st_size == 0)}


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    """An intact store of two GeoTIFFs (fake fingerprints) with a search index, and a TIFF."""
    root = tmp_path_factory.mktemp("fuzz")
    a = write_geotiff(root / "a.tif", 600, 500, crs="EPSG:32633", seed=1, alpha=True)
    write_geotiff(root / "b.tif", 520, 400, crs="EPSG:3857", seed=2)
    mp = pytest.MonkeyPatch()
    mp.setattr(api, "load_fingerprinter", lambda *a, **kw: FakeModel())
    api.index([root / "a.tif", root / "b.tif"], root / "s.tiles")
    api.build_index(root / "s.tiles", force=True)
    mp.undo()
    return root, a.read_bytes()


def mutate_bytes(rng, data):
    data = bytearray(data)
    kind = rng.integers(4)
    if kind == 0:  # flip bytes anywhere, the header most often
        for _ in range(int(rng.integers(1, 40))):
            at = int(rng.integers(0, 512 if rng.random() < 0.6 else len(data)))
            data[at] = int(rng.integers(256))
    elif kind == 1:
        data = data[:int(rng.integers(0, len(data)))]
    elif kind == 2:
        at = int(rng.integers(0, len(data)))
        data[at:at + int(rng.integers(1, 5000))] = b"\0" * 0
    else:
        at = int(rng.integers(0, len(data)))
        data[at:at] = rng.bytes(int(rng.integers(1, 3000)))
    return bytes(data)


def random_value(rng):
    return [None, 0, -1, 1.5, "x", [], {}, True, 10**20, "../../etc"][int(rng.integers(10))]


def mutate_manifest(rng, text):
    m = json.loads(text)
    if rng.random() < 0.1:
        return rng.bytes(int(rng.integers(0, 50)))
    if rng.random() < 0.1:
        return json.dumps([m]).encode()
    for _ in range(int(rng.integers(1, 4))):
        target = m["model"] if rng.random() < 0.4 and isinstance(m.get("model"), dict) else m
        if not isinstance(target, dict) or not target:
            break
        key = sorted(target)[int(rng.integers(len(target)))]
        if rng.random() < 0.3:
            del target[key]
        else:
            target[key] = random_value(rng)
    return json.dumps(m).encode()


def damage_files(rng, store):
    files = sorted(f for f in store.rglob("*") if f.is_file() and f.name != ".lock")
    f = files[int(rng.integers(len(files)))]
    kind = rng.integers(3)
    if kind == 0:
        f.unlink()
    elif kind == 1:
        with open(f, "r+b") as fh:
            fh.truncate(int(rng.integers(0, max(1, f.stat().st_size))))
    else:
        data = bytearray(f.read_bytes())
        for _ in range(int(rng.integers(1, 20))):
            if data:
                data[int(rng.integers(len(data)))] = int(rng.integers(256))
        f.write_bytes(bytes(data))


COMMANDS = [
    lambda s, root: ["info", s],
    lambda s, root: ["info", s, "--json", "-"],
    lambda s, root: ["search", s, "--tile", 3, "-k", 5],
    lambda s, root: ["search", s, "-p", 1, "-p", 20, "-n", 7, "--exact"],
    lambda s, root: ["search", s, "--tile", 2, "--bbox", "-180,-90,180,90", "--json", "-"],
    lambda s, root: ["build-index", s, "--force"],
    lambda s, root: ["check", s],
    lambda s, root: ["index", root / "a.tif", "--store", s, "-q"],
]


def check_outcome(code, err, before, after, what):
    assert code in (0, 1, 2), what
    assert "Traceback" not in err and "internal error" not in err, (what, err)
    if code != 0:
        lines = [ln for ln in err.strip().splitlines() if "%|" not in ln]
        assert lines, (what, "a failure must say why")
        assert len([ln for ln in lines if ln.lower().startswith("error")]) <= 1, (what, err)
        assert after == before, (what, "a failed command changed the store")


def test_fuzz_the_command_line(pristine, tmp_path, capsys, monkeypatch):
    root, tiff = pristine
    rng = np.random.default_rng(SEED)
    deadline = time.monotonic() + TIME_BOUND_S
    outcomes = {0: 0, 1: 0, 2: 0}
    for i in range(CASES * 3):
        if time.monotonic() > deadline:
            break
        case = tmp_path / f"case{i}"
        shutil.copytree(root / "s.tiles", case / "s.tiles")
        store = case / "s.tiles"
        kind = i % 3
        if kind == 0:  # a corrupted TIFF indexed into an intact store
            bad = case / "bad.tif"
            bad.write_bytes(mutate_bytes(rng, tiff))
            args = ["index", bad, "--store", store, "-q"]
        else:
            if kind == 1:
                (store / "manifest.json").write_bytes(
                    mutate_manifest(rng, (store / "manifest.json").read_text()))
            else:
                damage_files(rng, store)
            args = COMMANDS[int(rng.integers(len(COMMANDS)))](store, root)
        before = snapshot(store)
        code, _, err = run(args, capsys, monkeypatch)
        check_outcome(code, err, before, snapshot(store), (i, [str(a) for a in args]))
        outcomes[code] += 1
        shutil.rmtree(case)
    assert sum(outcomes.values()) >= 30 and outcomes[2] > 0  # enough ran, and some failed
