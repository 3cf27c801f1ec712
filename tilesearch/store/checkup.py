"""`tilesearch check`: a report on a store's damage, and the repair of what can be recovered."""

from __future__ import annotations

import os
from pathlib import Path

from tilesearch.errors import StoreError
from tilesearch.store.diagnose import CheckReport, inspect
from tilesearch.store.files import MANIFEST, read_manifest, write_lock
from tilesearch.store.store import Store


def check(path: str | Path, *, repair: bool = False) -> CheckReport:
    """A report on the store at `path` (`diagnose.inspect`); with `repair`, under the write
    lock, what can be recovered is, and a search index or augmentation that covered tiles
    forgotten by the repair is dropped (rebuild it with `build-index`)."""
    p = Path(path)
    manifest = read_manifest(p)
    if manifest.get("format") != "tilesearch-store":
        raise StoreError(f"{p}: not a tilesearch store ({MANIFEST} has another format)")
    fd = write_lock(p) if repair else None
    try:
        report = inspect(p, manifest, repair=repair)
    finally:
        if fd is not None:
            os.close(fd)
    if repair and report.repaired and report.ok:
        with Store.open(p, writable=True) as s:
            for key in ("ann", "augment"):
                entry = s.manifest.get(key)
                if entry and int(entry.get("count", 0)) > s.count:
                    s.set_manifest(key, None)
                    report.repaired.append(f"dropped the {key} entry, which covered forgotten "
                                           "tiles: run 'tilesearch build-index' again")
    return report
