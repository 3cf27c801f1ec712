"""Where benchmark figures go (JSON files under benchmarks/results/, git-ignored), and the
one timing loop the model benchmarks share."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def save(data: dict[str, Any], path: str | Path) -> Path:
    """Write `data` as indented JSON to `path` (a bare name goes under RESULTS_DIR)."""
    target = Path(path)
    if not target.is_absolute() and target.parent == Path("."):
        target = RESULTS_DIR / target
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(data, indent=2) + "\n")
    print(f"wrote {target}")
    return target


def tiles_per_second(run: Callable[[Any], Any], tiles: Any, repeats: int = 5) -> float:
    """Tiles a second of ``run(tiles)`` on one batch: one warm-up call, then the median of
    `repeats` timed calls."""
    run(tiles)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        run(tiles)
        times.append(time.perf_counter() - t)
    return len(tiles) / statistics.median(times)
