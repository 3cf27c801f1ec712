"""Keeping the server's file system out of its answers: files are named by their name only
(the store's path, its images' and failed files' paths), unless the app was started with
`expose_paths`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

_ABSOLUTE = re.compile(r"(?<![\w.~:/-])(?:/[^/\s'\",;:()\[\]<>]+)+/([^/\s'\",;:()\[\]<>]+)")


def hide_paths(text: str) -> str:
    """`text` with each absolute POSIX path cut to its last part ("/data/a.tif" -> "a.tif")."""
    return _ABSOLUTE.sub(r"\1", text)


def public_info(facts: dict[str, Any]) -> dict[str, Any]:
    """`api.info`'s facts with the store and the failed files named by their names only."""
    return {**facts, "store": Path(facts["store"]).name,
            "failures": [{**f, "path": Path(f["path"]).name,
                          "reason": hide_paths(str(f["reason"]))}
                         for f in facts.get("failures") or []]}
