"""The API's audits: a person reviews random samples of the places found and of the tiles
left below the threshold, and the answers give the count with an interval that holds
(`detect.audit`). Drawn for one label set, threshold and seed; stale once any changes."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tilesearch.api.scoring import Scores, check_threshold, scores
from tilesearch.detect import (
    AUDIT_DRAW,
    AuditCount,
    Detection,
    audit_version,
    audited_count,
    detections,
    draw_audit,
    lattice,
)
from tilesearch.errors import OptionError
from tilesearch.retrieval import SearchFilter
from tilesearch.store import LabelSet, Store, StoredAudit


def audit(store: str | Path, name: str, n: int = AUDIT_DRAW, *, threshold: float = 0.5,
          seed: int = 0, scored: Scores | None = None,
          places: Sequence[Detection] | None = None) -> StoredAudit:
    """Draw a new audit of the label set `name` at `threshold` (replacing any earlier one):
    `n` places found, at random, and `n` draws among the unlabelled tiles below the
    threshold on the store's non-overlapping lattice, by their probability. Returns it with
    the tiles to review; answer them with `answer_audit`. `scored` and `places` (the places
    at `threshold` from those scores) spare the work when the caller has them."""
    check_threshold(threshold)
    if not isinstance(n, int) or not 1 <= n <= 1000:
        raise OptionError(f"an audit draws from 1 to 1000 tiles of each kind, not {n!r}")
    with Store.open(store, writable=True) as s:
        sc = scored if scored is not None else scores(s, name, seed=seed)
        p = sc.probabilities
        if places is None:
            places = detections(s, sc.above(threshold), p)
        below = np.flatnonzero((p >= 0) & (p < threshold) & lattice(s.windows()))
        d = draw_audit(places, below, p, threshold, n, seed=sc.seed)
        weight = dict(zip(d.missed, d.weights, strict=True))
        rows = [(t, "found", 1, 1.0) for t in d.found] + [
            (t, "missed", k, weight[t]) for t, k in sorted(Counter(d.missed).items())]
        s.set_audit(name, audit_version(sc.labels, s.count, threshold, sc.seed), threshold,
                    d.places, rows)
        return s.audit(name)  # type: ignore[return-value]


def answer_audit(store: str | Path, name: str, *, present: Sequence[int] = (),
                 absent: Sequence[int] = ()) -> StoredAudit:
    """Record answers about tiles of `name`'s audit: `present` where the tile (for a place
    found: the place) holds what the label set marks, `absent` where not."""
    with Store.open(store, writable=True) as s:
        return s.answer_audit(name, present, absent)


def audit_for(store: Store, labels: LabelSet, threshold: float, seed: int,
              where: SearchFilter | None = None, *, commands: bool = True
              ) -> tuple[AuditCount | None, str | None]:
    """The audited count of `labels` at `threshold` from the store's audit, or None and a
    note saying why not (no audit: no note; an audit counts the whole store, never the area
    or images of `where`). The notes end with the CLI commands to run unless not `commands`
    (the web app, whose page has buttons, and never shows the store's path)."""
    got = store.audit(labels.name)
    if got is None:
        return None, None
    if where:
        return None, "the audit counts the whole store, not an area or images"
    draw_hint = f": tilesearch audit {store.path} {labels.name} --draw {AUDIT_DRAW}" \
        if commands else ""
    if got.threshold != threshold:
        again = f"{draw_hint} --threshold {threshold:g}" if commands else ""
        return None, (f"the audit was drawn at threshold {got.threshold:g}: find at it, or "
                      f"draw one at {threshold:g}{again}")
    if got.version != audit_version(labels, store.count, threshold, seed):
        return None, ("the labels or the store changed since the audit was drawn; draw a new "
                      f"one{draw_hint}")
    found = [bool(t.present) for t in got.of("found") if t.present is not None]
    missed = [(bool(t.present), t.weight) for t in got.of("missed") if t.present is not None
              for _ in range(t.draws)]
    count = audited_count(got.places, found, missed, below=bool(got.of("missed")),
                          seed=seed)
    left = len(got.unanswered)
    answer = (f": tilesearch audit {store.path} {labels.name} --yes TILE --no TILE"
              if commands else "")
    note = f"{left} of {len(got.tiles)} audit tiles unanswered{answer}" if left else None
    return count, note
