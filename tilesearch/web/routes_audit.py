"""Audits in the web app: draw one for a label set at the slider's threshold, show its tiles
as yes/no cards and record the answers (`api.audit`, `api.answer_audit`); `find` then
reports the audited count. The scores and places come from the find cache (a draw after a
find scores and merges nothing again, and is bounded as a find is); the writes hold the
label lock in the thread that writes, as marks do, so a write past its deadline keeps others
out until it is done."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from tilesearch import api
from tilesearch.detect import audit_version
from tilesearch.store import StoredAudit
from tilesearch.web.errors import NotFound
from tilesearch.web.finding import SEED, label_set
from tilesearch.web.routes_images import State, tile_outs
from tilesearch.web.routes_labels import cache, writing
from tilesearch.web.routes_search import gate
from tilesearch.web.schemas import AuditAnswers, AuditOut, AuditRequest
from tilesearch.web.state import StoreState

router = APIRouter(prefix="/api")


def audit_out(state: StoreState, got: StoredAudit) -> dict[str, Any]:
    store = state.store()
    current = got.version == audit_version(label_set(store, got.name), store.count,
                                           got.threshold, SEED)
    metas = store.tiles([t.tile_id for t in got.tiles])
    tiles = [{**out, "kind": t.kind, "present": t.present}
             for out, t in zip(tile_outs(state, metas), got.tiles, strict=True)]
    return {"label_set": got.name, "threshold": got.threshold, "places": got.places,
            "current": current, "unanswered": len(got.unanswered), "tiles": tiles}


def stored(state: StoreState, name: str) -> StoredAudit:
    label_set(state.store(), name)
    got = state.store().audit(name)
    if got is None:
        raise NotFound(f"the label set {name!r} has no audit yet: draw one (Audit the count)")
    return got


@router.get("/labels/{name}/audit", response_model=AuditOut,
            summary="A label set's audit: its tiles to review and their answers")
def get_audit(state: State, name: str) -> dict[str, Any]:
    return audit_out(state, stored(state, name))


@router.post("/labels/{name}/audit", response_model=AuditOut,
             summary="Draw a new audit: random places found and tiles below the threshold")
def draw(request: Request, state: State, name: str, req: AuditRequest) -> dict[str, Any]:
    label_set(state.store(), name)
    found = cache(request)

    def run() -> StoredAudit:
        sc = found.scored(state, name).scores
        places = found.find(state, name, req.threshold, None).detections
        with writing(request):
            return api.audit(state.path, name, req.n, threshold=req.threshold, seed=SEED,
                             scored=sc, places=places)

    return audit_out(state, gate(request).run(run))


@router.post("/labels/{name}/audit/answers", response_model=AuditOut,
             summary="Answer tiles of a label set's audit: present (yes) or absent (no)")
def answer(request: Request, state: State, name: str, req: AuditAnswers) -> dict[str, Any]:
    stored(state, name)
    with writing(request):
        got = api.answer_audit(state.path, name, present=req.present, absent=req.absent)
    return audit_out(state, got)
