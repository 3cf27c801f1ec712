"""Audits in the web app: draw one for a label set at the slider's threshold, show its tiles
as yes/no cards and record the answers (`api.audit`, `api.answer_audit`); `find` then
reports the audited count. Writes go through the label lock like marks; the scores come
from the find cache, so a draw after a find does not score the store again."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from tilesearch import api
from tilesearch.detect import audit_version
from tilesearch.store import StoredAudit
from tilesearch.web.errors import NotFound
from tilesearch.web.finding import label_set
from tilesearch.web.routes_images import State, tile_outs
from tilesearch.web.routes_labels import cache, writing
from tilesearch.web.routes_search import gate
from tilesearch.web.schemas import AuditAnswers, AuditOut, AuditRequest
from tilesearch.web.state import StoreState

router = APIRouter(prefix="/api")


def audit_out(request: Request, state: StoreState, got: StoredAudit) -> dict[str, Any]:
    sc = gate(request).run(lambda: cache(request).scored(state, got.name)).scores
    current = got.version == audit_version(sc.labels, state.store().count, got.threshold,
                                           sc.seed)
    metas = state.store().tiles([t.tile_id for t in got.tiles])
    tiles = [{**out, "kind": t.kind, "present": t.present}
             for out, t in zip(tile_outs(state, metas), got.tiles, strict=True)]
    return {"label_set": got.name, "threshold": got.threshold, "places": got.places,
            "current": current, "unanswered": len(got.unanswered), "tiles": tiles}


@router.get("/labels/{name}/audit", response_model=AuditOut,
            summary="A label set's audit: its tiles to review and their answers")
def get_audit(request: Request, state: State, name: str) -> dict[str, Any]:
    label_set(state.store(), name)
    got = state.store().audit(name)
    if got is None:
        raise NotFound(f"the label set {name!r} has no audit yet: draw one (Audit)")
    return audit_out(request, state, got)


@router.post("/labels/{name}/audit", response_model=AuditOut,
             summary="Draw a new audit: random places found and tiles below the threshold")
def draw(request: Request, state: State, name: str, req: AuditRequest) -> dict[str, Any]:
    label_set(state.store(), name)
    sc = gate(request).run(lambda: cache(request).scored(state, name)).scores
    with writing(request):
        got = gate(request).run(lambda: api.audit(state.path, name, req.n,
                                                  threshold=req.threshold, scored=sc))
    return audit_out(request, state, got)


@router.post("/labels/{name}/audit/answers", response_model=AuditOut,
             summary="Answer tiles of a label set's audit: present (yes) or absent (no)")
def answer(request: Request, state: State, name: str, req: AuditAnswers) -> dict[str, Any]:
    label_set(state.store(), name)
    with writing(request):
        got = api.answer_audit(state.path, name, present=req.present, absent=req.absent)
    return audit_out(request, state, got)
