"""Label sets kept in the store: named sets of tiles marked positive or negative ("pools",
"dead trees"), in SQLite beside the tiles, so that they survive a kill (each change is one
transaction), a reload of the web app and a rebuilt search index (a label names a tile id).
Stores made before label sets existed get the table with their first label."""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from tilesearch.errors import QueryError

LABELS_SCHEMA = """
CREATE TABLE IF NOT EXISTS labels(
    set_name TEXT NOT NULL,
    tile_id INTEGER NOT NULL,
    positive INTEGER NOT NULL CHECK (positive IN (0, 1)),
    added REAL,
    PRIMARY KEY (set_name, tile_id)
);
"""
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
"""A label set's name: letters, digits, '_', '.' and '-', at most 64 characters."""


@dataclass(frozen=True)
class LabelSet:
    """A named set of labelled tiles."""

    name: str
    positives: tuple[int, ...]
    negatives: tuple[int, ...]

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "positives": list(self.positives),
                "negatives": list(self.negatives)}


def check_name(name: str) -> str:
    """`name` when it may name a label set; QueryError saying what may otherwise."""
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise QueryError(f"{name!r} cannot name a label set: use letters, digits, '_', '.' "
                         "and '-' (at most 64 characters, not starting with a sign)")
    return name


class Labels:
    """Reading and writing the label sets of an open store (a part of `Store`)."""

    path: Path
    db: sqlite3.Connection
    count: int

    def _need_writable(self) -> None:
        raise NotImplementedError

    def remove_audit(self, name: str) -> None:
        raise NotImplementedError

    def _has_labels(self) -> bool:
        row = self.db.execute("SELECT 1 FROM sqlite_master WHERE name='labels'").fetchone()
        return row is not None

    def label_sets(self) -> list[LabelSet]:
        """Every label set of the store, by name."""
        if not self._has_labels():
            return []
        names = [r[0] for r in self.db.execute(
            "SELECT DISTINCT set_name FROM labels ORDER BY set_name")]
        return [self.label_set(n) for n in names]

    def label_set(self, name: str) -> LabelSet:
        """The label set `name`; QueryError naming the sets there are when there is none."""
        rows = self.db.execute("SELECT tile_id, positive FROM labels WHERE set_name=? ORDER BY "
                               "tile_id", (name,)).fetchall() if self._has_labels() else []
        if not rows:
            known = ", ".join(s.name for s in self.label_sets()) or "none yet"
            raise QueryError(f"{self.path}: no label set {name!r} (label sets: {known}); "
                             "make one with 'tilesearch label STORE NAME -p TILE'")
        return LabelSet(name, tuple(int(t) for t, p in rows if p),
                        tuple(int(t) for t, p in rows if not p))

    def set_labels(self, name: str, positives: Iterable[int] = (),
                   negatives: Iterable[int] = (), unlabel: Iterable[int] = ()) -> None:
        """Mark tiles positive or negative in the set `name` (a tile marked again takes its
        new mark) and forget the marks of `unlabel`, in one transaction."""
        self._need_writable()
        check_name(name)
        pos, neg, gone = (sorted({int(i) for i in ids}) for ids in (positives, negatives,
                                                                     unlabel))
        both = set(pos) & set(neg)
        if both:
            raise QueryError(f"tile {min(both)} is marked both positive and negative")
        bad = [i for i in [*pos, *neg, *gone] if not 0 <= i < self.count]
        if bad:
            raise QueryError(f"{self.path}: no tile with id {bad[0]} (tile ids run from 0 to "
                             f"{self.count - 1})")
        now = time.time()
        with self.db:
            self.db.execute("BEGIN")
            self.db.execute(LABELS_SCHEMA)  # one statement: part of this transaction
            self.db.executemany("INSERT OR REPLACE INTO labels(set_name, tile_id, positive, "
                                "added) VALUES (?, ?, ?, ?)",
                                [(name, i, 1, now) for i in pos] + [(name, i, 0, now)
                                                                    for i in neg])
            self.db.executemany("DELETE FROM labels WHERE set_name=? AND tile_id=?",
                                [(name, i) for i in gone])

    def remove_label_set(self, name: str) -> int:
        """Delete the label set `name`; returns how many labels it held (QueryError: none)."""
        self._need_writable()
        found = self.label_set(name)
        n = len(found.positives) + len(found.negatives)
        with self.db:
            self.db.execute("BEGIN")
            self.db.execute("DELETE FROM labels WHERE set_name=?", (name,))
            self.remove_audit(name)
        return n
