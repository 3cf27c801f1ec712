"""Looking a store over in depth (`inspect`) and recovering what can be (with `repair`):
fingerprints lost from the end of the vector file, missing or wrong norms."""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tilesearch.errors import StoreError
from tilesearch.store.validate import (
    Layout,
    check_tables,
    committed_count,
    connect,
    layout_problems,
    manifest_problem,
    norm_mismatches,
)

_ROWS_CHECKED = 4096
"""`check` compares the stored norm of up to this many fingerprints with the fingerprint."""


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


def inspect(path: Path, manifest: dict[str, Any], repair: bool = False) -> CheckReport:
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
