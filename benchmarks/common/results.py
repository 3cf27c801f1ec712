"""Where benchmark figures go: JSON files under benchmarks/results/ (git-ignored)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parents[1] / "results"


def save(data: dict[str, Any], path: str | Path) -> Path:
    """Write `data` as indented JSON to `path` (a bare name goes under RESULTS_DIR)."""
    target = Path(path)
    if not target.is_absolute() and target.parent == Path("."):
        target = RESULTS_DIR / target
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(data, indent=2) + "\n")
    print(f"wrote {target}")
    return target
