"""Counts checked by a review. The labels' cross-fit says little about precision on the
store (a few dozen negatives cannot tell how many of its other tiles slip above the
threshold), so a count corrected by it misses the truth more often than its interval says
(docs/benchmarks/find.md). An audit asks a person instead, about two samples drawn at random:

* `found`: the best tile of places drawn without replacement from those found at the
  threshold; the share answered yes estimates how many places are real;
* `missed`: unlabelled tiles below the threshold drawn with replacement, each with
  probability proportional to its score (plus `FLOOR`), where missed ones hide; answered yes,
  a draw stands for 1/q tiles (Hansen-Hurwitz), which estimates the places left out. Where
  tiles overlap only the non-overlapping lattice of the store's tiles is drawn from
  (`lattice`), so a missed object is counted about once.

The audited count is their sum, with a 90 % interval from a Jeffreys beta of the found share
and the exact Poisson bounds of the missed ones found (`audited_count`). An audit belongs to the
labels, the store and the threshold it was drawn for (`audit_version`): once any changes, it
is stale and a new one must be drawn."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tilesearch.detect.places import Detection
from tilesearch.store import LabelSet

AUDIT_DRAW = 20
"""Tiles of each kind an audit draws by default."""
FLOOR = 1e-3
"""Added to every probability for the missed draw, so that any tile below can be drawn."""
LEVEL = 0.90
"""The audited count's interval."""
SAMPLES = 4000
"""Monte Carlo draws of that interval."""


@dataclass(frozen=True)
class AuditDraw:
    """The tiles an audit asks about: `found` (one per place drawn, of `places` found at
    `threshold`) and `missed` (tile ids below it, one per draw, so a tile may repeat) with
    the weight 1/q of each draw."""

    threshold: float
    places: int
    found: tuple[int, ...]
    missed: tuple[int, ...]
    weights: tuple[float, ...]


@dataclass(frozen=True)
class AuditCount:
    """The count an audit's answers give, with its 90 % interval and what it rests on."""

    count: float
    low: float
    high: float
    places: int
    found_answered: int
    found_yes: int
    missed_answered: int
    missed_yes: int
    missed: float
    """The estimated places left below the threshold."""

    def to_dict(self) -> dict[str, float | int]:
        return {"count": round(self.count, 2), "low": round(self.low, 2),
                "high": round(self.high, 2), "places": self.places,
                "found_answered": self.found_answered, "found_yes": self.found_yes,
                "missed_answered": self.missed_answered, "missed_yes": self.missed_yes,
                "missed": round(self.missed, 2)}


def audit_version(labels: LabelSet, tiles: int, threshold: float, seed: int) -> str:
    """What an audit is valid for: the labels, the store's tile count, the threshold and the
    seed the scores were made with."""
    text = f"{sorted(labels.positives)}|{sorted(labels.negatives)}|{tiles}|{threshold!r}|{seed}"
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def lattice(windows: np.ndarray) -> np.ndarray:
    """A mask of the tiles on the store's non-overlapping lattice: windows (image, col, row,
    width, height) whose offsets are whole multiples of their size. One tile of each of
    the 128 px grid's 2 x 2 blocks; every tile where tiles do not overlap."""
    col, row, w, h = (windows[:, i] for i in (1, 2, 3, 4))
    return np.asarray((col % np.maximum(w, 1) == 0) & (row % np.maximum(h, 1) == 0))


def draw_audit(found: Sequence[Detection], below: np.ndarray, probabilities: np.ndarray,
         threshold: float, n: int = AUDIT_DRAW, *, seed: int = 0) -> AuditDraw:
    """`n` places of `found` at random (their best tiles) and `n` draws from the tile ids
    `below` with probability proportional to their probability plus FLOOR."""
    rng = np.random.default_rng(seed)
    picked = np.sort(rng.choice(len(found), min(n, len(found)), replace=False))
    best = tuple(_best(found[int(i)], probabilities) for i in picked)
    below = np.asarray(below, np.int64)
    if not len(below):
        return AuditDraw(threshold, len(found), best, (), ())
    mass = np.clip(probabilities[below], 0.0, 1.0).astype(np.float64) + FLOOR
    q = mass / mass.sum()
    j = np.sort(rng.choice(len(below), n, replace=True, p=q))
    return AuditDraw(threshold, len(found), best, tuple(int(t) for t in below[j]),
                     tuple(float(1.0 / q[i]) for i in j))


def audited_count(places: int, found: Sequence[bool], missed: Sequence[tuple[bool, float]],
                  *, below: bool = True, seed: int = 0) -> AuditCount | None:
    """The count from the answers about `found` places (yes: a real one) and `missed` draws
    (yes, weight 1/q): places x the share of yes + the Hansen-Hurwitz estimate of those
    missed. The interval takes the real places from a Jeffreys beta and those missed from
    the exact (Garwood) Poisson bounds of the yes draws. None until a found place (when there
    are places) and a missed draw (when there are tiles `below`) are answered."""
    m_f, a = len(found), int(sum(bool(x) for x in found))
    if (places and not m_f) or (below and not missed):
        return None
    yes = np.array([bool(y) for y, _ in missed], bool)
    w = np.array([float(v) for _, v in missed])
    m_m, k = len(missed), int(yes.sum())
    missed_est = float((yes * w).sum() / m_m) if m_m else 0.0
    share = a / m_f if m_f else 0.0
    rng = np.random.default_rng(seed)
    if m_f >= places:  # every place reviewed: the real ones are known
        real = np.full(SAMPLES, float(a))
    else:
        real = places * rng.beta(a + 0.5, m_f - a + 0.5, SAMPLES)
    scale = ((w[yes].mean() if k else float(np.median(w))) / m_m) if m_m else 0.0
    low = real + (rng.gamma(k, 1.0, SAMPLES) if k else 0.0) * scale
    high = real + rng.gamma(k + 1.0, 1.0, SAMPLES) * scale
    tail = (1.0 - LEVEL) / 2
    lo, hi = float(np.quantile(low, tail)), float(np.quantile(high, 1.0 - tail))
    return AuditCount(places * share + missed_est, lo, hi, places, m_f, a, m_m, k,
                      missed_est)


def _best(d: Detection, probabilities: np.ndarray) -> int:
    tiles = np.asarray(d.tiles, np.int64)
    return int(tiles[np.argmax(probabilities[tiles])])
