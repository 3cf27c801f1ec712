"""Validating a store before anything reads or writes it: run on every open (cheap: a few stats
and two fingerprint rows), so a damaged store answers one `StoreError` saying what is wrong and
what to do instead of a traceback or silently different results."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tilesearch.errors import StoreError
from tilesearch.options import GSD_CHOICES, GSD_RANGE

TABLES = ("images", "tiles", "tiles_rtree", "failures")


CHECK_HINT = "run 'tilesearch check STORE' for a report and 'tilesearch check --repair STORE'"


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
    gsd = m.get("gsd", "native")
    if gsd not in GSD_CHOICES and not (isinstance(gsd, int | float) and not isinstance(gsd, bool)
                                       and GSD_RANGE[0] <= gsd <= GSD_RANGE[1]):
        return f"'gsd' must be metres a pixel or one of {GSD_CHOICES}, not {gsd!r}"
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
