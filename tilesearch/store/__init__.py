"""The store: one folder of fingerprints (memory-mapped float32) and SQLite metadata, validated
on every open, appended crash-safely; `check` reports damage, `warm` reads it into memory.
The folder's format is described in docs/design.md."""

from tilesearch.store.audits import AuditTile, StoredAudit
from tilesearch.store.checkup import check
from tilesearch.store.compared import AUGMENT_KEY, unit
from tilesearch.store.diagnose import CheckReport
from tilesearch.store.files import FORMAT_VERSION, MANIFEST, read_manifest, write_lock
from tilesearch.store.labels import LabelSet, check_name
from tilesearch.store.pages import PAGE, advise_random, prefetch_head, prefetch_rows
from tilesearch.store.store import Store
from tilesearch.store.warming import Warmer, warm

__all__ = [
    "AUGMENT_KEY",
    "FORMAT_VERSION",
    "MANIFEST",
    "PAGE",
    "AuditTile",
    "CheckReport",
    "LabelSet",
    "Store",
    "StoredAudit",
    "Warmer",
    "advise_random",
    "check",
    "check_name",
    "prefetch_head",
    "prefetch_rows",
    "read_manifest",
    "unit",
    "warm",
    "write_lock",
]
