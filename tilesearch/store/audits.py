"""Audits kept in the store: for a label set, the tiles drawn for a person to review (the
places found and the tiles left below the threshold, `detect.audit`) and the answers given
so far, in SQLite beside the labels (each change one transaction). An audit's answers are
never training labels: that would make its samples no longer random."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from tilesearch.errors import QueryError

AUDITS_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS audits(
    set_name TEXT PRIMARY KEY,
    version TEXT NOT NULL,
    threshold REAL NOT NULL,
    places INTEGER NOT NULL,
    drawn REAL
)""",
    """CREATE TABLE IF NOT EXISTS audit_tiles(
    set_name TEXT NOT NULL,
    tile_id INTEGER NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('found', 'missed')),
    draws INTEGER NOT NULL,
    weight REAL NOT NULL,
    present INTEGER CHECK (present IN (0, 1)),
    PRIMARY KEY (set_name, tile_id)
)""",
)
KINDS = ("found", "missed")


@dataclass(frozen=True)
class AuditTile:
    """One tile to review: `found` (the best tile of a place) or `missed` (drawn `draws`
    times from below the threshold, each draw standing for `weight` tiles), and its answer
    (None until given)."""

    tile_id: int
    kind: str
    draws: int
    weight: float
    present: bool | None


@dataclass(frozen=True)
class StoredAudit:
    """A label set's audit: what it was drawn for (`version`, `threshold`, `places` found
    then) and its tiles."""

    name: str
    version: str
    threshold: float
    places: int
    tiles: tuple[AuditTile, ...]

    def of(self, kind: str) -> list[AuditTile]:
        return [t for t in self.tiles if t.kind == kind]

    @property
    def unanswered(self) -> list[int]:
        return [t.tile_id for t in self.tiles if t.present is None]


class Audits:
    """Reading and writing the audits of an open store (a part of `Store`)."""

    path: Path
    db: sqlite3.Connection

    def _need_writable(self) -> None:
        raise NotImplementedError

    def audit(self, name: str) -> StoredAudit | None:
        """The audit of the label set `name`, None when it has none."""
        if self.db.execute("SELECT 1 FROM sqlite_master WHERE name='audits'").fetchone() is None:
            return None
        head = self.db.execute("SELECT version, threshold, places FROM audits WHERE set_name=?",
                               (name,)).fetchone()
        if head is None:
            return None
        rows = self.db.execute("SELECT tile_id, kind, draws, weight, present FROM audit_tiles "
                               "WHERE set_name=? ORDER BY kind, tile_id", (name,)).fetchall()
        tiles = tuple(AuditTile(int(t), k, int(d), float(w), None if p is None else bool(p))
                      for t, k, d, w, p in rows)
        return StoredAudit(name, head[0], float(head[1]), int(head[2]), tiles)

    def set_audit(self, name: str, version: str, threshold: float, places: int,
                  tiles: Iterable[tuple[int, str, int, float]]) -> None:
        """Replace the audit of `name` by new (tile id, kind, draws, weight) tiles, none
        answered, in one transaction."""
        self._need_writable()
        rows = [(name, int(t), k, int(d), float(w), None) for t, k, d, w in tiles]
        with self.db:
            self.db.execute("BEGIN")
            for statement in AUDITS_SCHEMA:
                self.db.execute(statement)
            self.db.execute("DELETE FROM audit_tiles WHERE set_name=?", (name,))
            self.db.execute("INSERT OR REPLACE INTO audits(set_name, version, threshold, "
                            "places, drawn) VALUES (?, ?, ?, ?, ?)",
                            (name, version, float(threshold), int(places), time.time()))
            self.db.executemany("INSERT INTO audit_tiles VALUES (?, ?, ?, ?, ?, ?)", rows)

    def answer_audit(self, name: str, present: Iterable[int] = (),
                     absent: Iterable[int] = ()) -> StoredAudit:
        """Record answers about tiles of `name`'s audit (a tile answered again takes its
        new answer); QueryError for a tile the audit does not hold."""
        self._need_writable()
        yes, no = sorted({int(t) for t in present}), sorted({int(t) for t in absent})
        both = set(yes) & set(no)
        if both:
            raise QueryError(f"tile {min(both)} is answered both yes and no")
        current = self.audit(name)
        if current is None:
            raise QueryError(f"{self.path}: the label set {name!r} has no audit; draw one "
                             f"with 'tilesearch audit STORE {name} --draw 20'")
        held = {t.tile_id for t in current.tiles}
        stray = [t for t in [*yes, *no] if t not in held]
        if stray:
            raise QueryError(f"tile {stray[0]} is not in the audit of {name!r} (its tiles: "
                             f"{', '.join(map(str, sorted(held)[:12]))}"
                             f"{' ...' if len(held) > 12 else ''})")
        with self.db:
            self.db.execute("BEGIN")
            self.db.executemany("UPDATE audit_tiles SET present=? WHERE set_name=? AND "
                                "tile_id=?", [(1, name, t) for t in yes]
                                + [(0, name, t) for t in no])
        return self.audit(name)  # type: ignore[return-value]

    def remove_audit(self, name: str) -> None:
        """Forget the audit of `name` (none: nothing to do); the caller holds a transaction
        or gets one."""
        if self.db.execute("SELECT 1 FROM sqlite_master WHERE name='audits'").fetchone() is None:
            return
        self.db.execute("DELETE FROM audits WHERE set_name=?", (name,))
        self.db.execute("DELETE FROM audit_tiles WHERE set_name=?", (name,))
