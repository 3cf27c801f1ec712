"""The store folder's files: the manifest, the write lock, durable appends and writes."""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import Any

from tilesearch.errors import StoreError

FORMAT_VERSION = 1


MANIFEST = "manifest.json"


def write_lock(path: Path) -> int:
    """Take the store's write lock (released when the returned descriptor is closed);
    StoreError when another process holds it."""
    fd = os.open(path / ".lock", os.O_CREAT | os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        os.close(fd)
        raise StoreError(f"{path}: another process is writing to this store; "
                         "wait for it to finish") from exc
    return fd


def read_manifest(p: Path) -> dict[str, Any]:
    """The parsed manifest of the store folder `p`; StoreError when there is none."""
    if p.is_file():
        raise StoreError(f"{p}: is a file, not a store folder; name a folder for the store")
    if not p.is_dir():
        raise StoreError(f"{p}: no such store folder; create one with 'tilesearch index'")
    try:
        manifest = json.loads((p / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise StoreError(f"{p}: not a tilesearch store (no readable {MANIFEST})") from exc
    if not isinstance(manifest, dict):
        raise StoreError(f"{p}: {MANIFEST} is not a JSON object; the store is damaged: "
                         f"restore {MANIFEST} from a backup or re-index into a new store")
    return manifest


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _append_synced(path: Path, data: bytes) -> None:
    with open(path, "ab") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)
