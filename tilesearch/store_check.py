"""Validating a store before anything reads or writes it, and `tilesearch check`.

`validate_manifest` and `check_layout` run on every open (cheap: a few stats and two
fingerprint rows), so a damaged store answers one `StoreError` saying what is wrong and what to
do instead of a traceback or silently different results. `check` looks deeper (SQLite's own
check, every stored norm against its fingerprint) and `repair` recovers what can be recovered:
fingerprints lost from the end of the vector file (their tiles are forgotten and their images
resume on the next `index`) and a missing or damaged norms file (recomputed).
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tilesearch.errors import StoreError

TABLES = ("images", "tiles", "tiles_rtree", "failures")
CHECK_HINT = "run 'tilesearch check STORE' for a report and 'tilesearch check --repair STORE'"
_ROWS_CHECKED = 4096
"""`check` compares the stored norm of up to this many fingerprints with the fingerprint."""


def _is_int(v: Any, low: int = 0) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= low


def _is_name(v: Any) -> bool:
    return isinstance(v, str) and bool(v) and "/" not in v and v not in (".", "..")


def manifest_problem(m: Any) -> str | None:
    """Why a parsed manifest cannot be a store's, or None when its fields are all sound."""
    if not isinstance(m, dict):
        return "is not a JSON object"
    model = m.get("model")
    if not isinstance(model, dict):
        return "has no 'model' object"
    for key in ("name", "weights_sha256", "normalisation"):
        if not isinstance(model.get(key), str) or not model.get(key):
            return f"model has no '{key}'"
    if not _is_int(model.get("dim"), 1):
        return f"model dim must be a positive integer, not {model.get('dim')!r}"
    for key in ("tile_size", "stride"):
        if not _is_int(m.get(key), 1):
            return f"'{key}' must be a positive integer, not {m.get(key)!r}"
    mi = m.get("max_invalid")
    if isinstance(mi, bool) or not isinstance(mi, int | float) or not 0 <= mi <= 1:
        return f"'max_invalid' must be a number from 0 to 1, not {mi!r}"
    if not _is_int(m.get("full_from", 0)):
        return f"'full_from' must be an integer >= 0, not {m.get('full_from')!r}"
    if not _is_name(m.get("vectors_file", "vectors.f32")):
        return f"'vectors_file' is not a file name: {m.get('vectors_file')!r}"
    for key in ("ann", "augment"):
        entry = m.get(key)
        if entry is not None and not (isinstance(entry, dict)
                                      and (entry.get("file") is None
                                           or isinstance(entry.get("file"), str))):
            return f"'{key}' entry is malformed"
    return None


def validate_manifest(path: Path, m: Any) -> None:
    """StoreError naming the manifest's problem (the format itself is checked by the caller)."""
    problem = manifest_problem(m)
    if problem:
        raise StoreError(f"{path}: manifest.json {problem}; the store is damaged: restore "
                         "manifest.json from a backup or re-index into a new store")


def check_tables(path: Path, db: sqlite3.Connection) -> None:
    """StoreError unless meta.sqlite is a database with the store's tables."""
    try:
        names = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
    except (sqlite3.DatabaseError, UnicodeDecodeError) as exc:  # a damaged schema, too
        raise StoreError(f"{path}: meta.sqlite is damaged ({exc}); restore it from a backup "
                         "or re-index into a new store") from exc
    missing = [t for t in TABLES if t not in names]
    if missing:
        raise StoreError(f"{path}: meta.sqlite lacks the table(s) {', '.join(missing)}; the "
                         "store is damaged: restore it from a backup or re-index into a new "
                         "store")


@dataclass(frozen=True)
class Layout:
    """What the committed metadata says the vector files must hold."""

    path: Path
    vectors_file: str
    dim: int
    count: int
    full_from: int

    @property
    def vector_bytes(self) -> int:
        return (self.count - self.full_from) * self.dim * 4

    @property
    def norm_bytes(self) -> int:
        return self.count * 4


def layout_problems(lay: Layout) -> list[str]:
    """Files missing or shorter than the committed tiles need (longer is an interrupted
    append, recovered on the next write)."""
    out = []
    if lay.full_from > lay.count:
        out.append(f"manifest keeps full vectors from tile {lay.full_from}, past the "
                   f"{lay.count} committed tiles")
    for name, need in ((lay.vectors_file, lay.vector_bytes), ("norms.f32", lay.norm_bytes)):
        f = lay.path / name
        if not f.is_file():
            out.append(f"{name} is missing")
        elif f.stat().st_size < need:
            out.append(f"{name} holds {f.stat().st_size:,} bytes, fewer than the {need:,} the "
                       f"{lay.count:,} committed tiles need")
    return out


def norm_mismatches(lay: Layout, rows: np.ndarray) -> list[int]:
    """Tile ids among `rows` whose stored squared norm differs from their fingerprint's."""
    if not len(rows) or layout_problems(lay):
        return []
    vec = np.memmap(lay.path / lay.vectors_file, np.float32, "r",
                    shape=(lay.count - lay.full_from, lay.dim))
    nrm = np.memmap(lay.path / "norms.f32", np.float32, "r", shape=(lay.count,))
    v = np.asarray(vec[rows - lay.full_from], np.float64)
    got = np.asarray(nrm[rows], np.float64)
    want = np.einsum("ij,ij->i", v, v)
    bad = ~np.isclose(got, want, rtol=1e-3, atol=1e-6)
    return [int(i) for i in rows[bad]]


def check_layout(lay: Layout) -> None:
    """StoreError when the files do not hold what the metadata commits to (checked on every
    open: sizes, and the first and last fingerprint against their stored norms)."""
    problems = layout_problems(lay)
    if not problems and lay.count > lay.full_from:
        ends = np.unique(np.array([lay.full_from, lay.count - 1], np.int64))
        if norm_mismatches(lay, ends):
            problems.append(f"fingerprints in {lay.vectors_file} do not match their norms "
                            f"(was the model's dimension {lay.dim} changed in manifest.json?)")
    if problems:
        raise StoreError(f"{lay.path}: the store is damaged: {problems[0]}; {CHECK_HINT} "
                         "to recover what can be")


@dataclass
class CheckReport:
    """What `check` found: problems (the store cannot be used as it is), notes (it can)."""

    store: str
    tiles: int = 0
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {"store": self.store, "ok": self.ok, "tiles": self.tiles,
                "problems": self.problems, "notes": self.notes, "repaired": self.repaired}


def extra_files(lay: Layout, manifest: dict[str, Any]) -> list[str]:
    """Problems with the files the search index and augmentation entries name."""
    out = []
    for key in ("ann", "augment"):
        entry = manifest.get(key) or {}
        name = entry.get("file")
        if name and not (lay.path / name).is_file():
            cmd = "build-index --rebuild" if key == "ann" else "build-index --augment K"
            out.append(f"{name} (the {key} entry's file) is missing: run 'tilesearch {cmd}'")
    tail = [(lay.path / n).stat().st_size - need for n, need in
            ((lay.vectors_file, lay.vector_bytes), ("norms.f32", lay.norm_bytes))
            if (lay.path / n).is_file()]
    if any(t > 0 for t in tail):
        out.append(f"{max(tail):,} bytes past the committed tiles (an interrupted append; "
                   "dropped by the next 'tilesearch index')")
    return out


def sample_rows(lay: Layout, n: int = _ROWS_CHECKED, seed: int = 0) -> np.ndarray:
    """Up to `n` kept tile ids, the first and last among them."""
    kept = lay.count - lay.full_from
    if kept <= 0:
        return np.zeros(0, np.int64)
    if kept <= n:
        return np.arange(lay.full_from, lay.count, dtype=np.int64)
    rng = np.random.default_rng(seed)
    pick = rng.choice(kept, n - 2, replace=False) + lay.full_from
    return np.unique(np.concatenate([[lay.full_from, lay.count - 1], pick]).astype(np.int64))


def rows_available(lay: Layout) -> int:
    """How many tiles (from tile 0) both vector files hold whole rows for."""
    f, g = lay.path / lay.vectors_file, lay.path / "norms.f32"
    vec_rows = f.stat().st_size // (lay.dim * 4) + lay.full_from if f.is_file() else 0
    norm_rows = g.stat().st_size // 4 if g.is_file() else 0
    return min(lay.count, vec_rows, norm_rows)


def recompute_norms(lay: Layout) -> None:
    """Write norms.f32 anew from the kept fingerprints (atomically); tiles whose fingerprints
    were dropped keep their stored norm, which exists only when the file does."""
    old = lay.path / "norms.f32"
    have = np.fromfile(old, np.float32) if old.is_file() else np.zeros(0, np.float32)
    out = np.zeros(lay.count, np.float32)
    out[:min(len(have), lay.count)] = have[:lay.count]
    vec = np.memmap(lay.path / lay.vectors_file, np.float32, "r",
                    shape=(lay.count - lay.full_from, lay.dim))
    for start in range(0, len(vec), 65536):
        v = np.asarray(vec[start:start + 65536])
        out[lay.full_from + start:lay.full_from + start + len(v)] = np.einsum("ij,ij->i", v, v)
    tmp = old.with_suffix(".tmp")
    with open(tmp, "wb") as fh:
        fh.write(out.tobytes())
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, old)


def connect(path: Path, writable: bool) -> sqlite3.Connection:
    """meta.sqlite opened without ever creating it: StoreError when it is missing."""
    db_file = path / "meta.sqlite"
    if not db_file.is_file():
        raise StoreError(f"{path}: meta.sqlite is missing; the store is damaged: restore it "
                         "from a backup or re-index into a new store")
    uri = f"{db_file.resolve().as_uri()}?mode={'rw' if writable else 'ro'}"
    try:
        db = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
    except sqlite3.Error as exc:
        raise StoreError(f"{path}: meta.sqlite cannot be opened ({exc})") from exc
    db.text_factory = _text
    return db


def _text(raw: bytes) -> str:
    """SQLite text as str; damaged bytes are a database error, not a UnicodeDecodeError."""
    try:
        return raw.decode()
    except UnicodeDecodeError as exc:
        raise sqlite3.DataError(f"text that is not UTF-8 ({exc.reason})") from exc


def committed_count(db: sqlite3.Connection) -> int:
    return int(db.execute("SELECT COALESCE(MAX(id) + 1, 0) FROM tiles").fetchone()[0])


def check(path: Path, manifest: dict[str, Any], repair: bool = False) -> CheckReport:
    """Look the store at `path` over (its manifest already parsed); with `repair`, recover
    what can be recovered (the caller holds the store's write lock)."""
    rep = CheckReport(store=str(path))
    problem = manifest_problem(manifest)
    if problem:
        rep.problems.append(f"manifest.json {problem}: restore it from a backup")
        return rep
    try:
        db = connect(path, writable=repair)
        check_tables(path, db)
        quick = db.execute("PRAGMA quick_check").fetchone()[0]
    except (StoreError, sqlite3.DatabaseError) as exc:
        rep.problems.append(str(exc).removeprefix(f"{path}: "))
        return rep
    try:
        if quick != "ok":
            rep.problems.append(f"meta.sqlite fails SQLite's check ({quick}): restore it from "
                                "a backup or re-index into a new store")
            return rep
        lay = Layout(path, str(manifest.get("vectors_file", "vectors.f32")),
                     int(manifest["model"]["dim"]), committed_count(db),
                     int(manifest.get("full_from", 0)))
        rep.tiles = lay.count
        _check_vectors(lay, db, rep, repair)
        rep.notes += extra_files(Layout(path, lay.vectors_file, lay.dim, committed_count(db),
                                        lay.full_from), manifest)
    finally:
        db.close()
    return rep


def _check_vectors(lay: Layout, db: sqlite3.Connection, rep: CheckReport,
                   repair: bool) -> None:
    problems = layout_problems(lay)
    vec_ok = not any(p.startswith(lay.vectors_file) or p.startswith("manifest")
                     for p in problems)
    if not vec_ok:
        if repair and lay.full_from == 0 and (lay.path / lay.vectors_file).is_file():
            lay = _forget_tiles_past(lay, db, rep)
        else:
            rep.problems += problems
            rep.problems.append("fingerprints are missing: 'tilesearch check --repair' forgets "
                                "the tiles they belong to (their images resume on the next "
                                "'tilesearch index')" if lay.full_from == 0 else
                                "fingerprints are missing: re-index into a new store")
            return
    bad = norm_mismatches(lay, sample_rows(lay)) if not layout_problems(lay) else [-1]
    if bad:
        if repair and lay.full_from == 0:
            recompute_norms(lay)
            rep.repaired.append("norms.f32 recomputed from the fingerprints")
        else:
            what = "norms.f32 is missing or short" if bad == [-1] else \
                f"{len(bad)} stored norms differ from their fingerprints (first: tile {bad[0]})"
            rep.problems.append(f"{what}: 'tilesearch check --repair' recomputes them")


def _forget_tiles_past(lay: Layout, db: sqlite3.Connection, rep: CheckReport) -> Layout:
    """Delete the committed tiles whose fingerprints are lost (the tail of the vector file),
    mark their images for resuming, and cut the vector file to whole rows."""
    f = lay.path / lay.vectors_file
    keep = min(lay.count, f.stat().st_size // (lay.dim * 4))
    with db:
        db.execute("BEGIN")
        images = [r[0] for r in db.execute("SELECT DISTINCT image_id FROM tiles WHERE id >= ?",
                                           (keep,))]
        db.execute("DELETE FROM tiles_rtree WHERE id >= ?", (keep,))
        db.execute("DELETE FROM tiles WHERE id >= ?", (keep,))
        for image_id in images:
            db.execute("UPDATE images SET status='indexing', n_tiles=(SELECT COUNT(*) FROM "
                       "tiles WHERE image_id=?) WHERE id=?", (image_id, image_id))
    os.truncate(f, keep * lay.dim * 4)
    rep.repaired.append(f"forgot tiles {keep}..{lay.count - 1}, whose fingerprints were lost; "
                        f"{len(images)} image(s) resume on the next 'tilesearch index'")
    return Layout(lay.path, lay.vectors_file, lay.dim, keep, lay.full_from)
