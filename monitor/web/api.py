"""The JSON API under /api/: the same documents as the CLI's `--json` output (built by report.py,
described by schema.py), served as they are built."""
from __future__ import annotations

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse

from .. import report, schema
from ..extract import parse_text
from ..store import StoreError
from . import queries
from .context import target_or_404, version_or_404, web_of
from .search import search as search_texts

router = APIRouter(tags=["history"], responses={404: {"model": schema.Error, "description": "not found"},
                                                 401: {"model": schema.Error, "description": "log in first"}})


@router.get("/targets", response_model=list[schema.Target], summary="Targets, as `monitor targets --json`")
def targets(request: Request, all: bool = Query(False, description="also targets no longer in the config")):
    web = web_of(request)
    return JSONResponse(report.target_list(web.store, include_inactive=all, paused=web.live.get().paused))


@router.get("/sites", response_model=list[schema.Site], summary="Sites, as `monitor sites --json`")
def sites(request: Request):
    web = web_of(request)
    return JSONResponse(report.site_list(web.store, web.live.get()))


@router.get("/targets/{name}", response_model=schema.History,
            summary="One target's changes, events, versions and recent checks, as `monitor history NAME --json`")
def history(request: Request, name: str, checks: int = Query(20, ge=0, le=1000, description="how many check rows")):
    store = web_of(request).store
    try:
        return JSONResponse(report.history(store, name, checks=checks))
    except StoreError as exc:
        raise HTTPException(404, str(exc)) from None


@router.get("/targets/{name}/versions", response_model=list[schema.Version],
            summary="A target's versions, newest first")
def versions(request: Request, name: str):
    store = web_of(request).store
    target = target_or_404(store, name)
    return JSONResponse([report.version_dict(v) for v in queries.versions(store, target.id)])


@router.get("/targets/{name}/versions/{version}", response_model=schema.VersionText,
            summary="A version's extracted text, as `monitor show NAME VERSION --json`")
def version_text(request: Request, name: str, version: str):
    web = web_of(request)
    target = target_or_404(web.store, name)
    row = version_or_404(web.store, target, version)
    return JSONResponse(report.show_dict(name, row, parse_text(web.texts.text(row.text_sha))))


@router.get("/targets/{name}/changes", response_model=list[schema.Change], summary="A target's changes, newest first")
def target_changes(request: Request, name: str):
    store = web_of(request).store
    target = target_or_404(store, name)
    found = queries.changes(store, target.id, limit=None)
    return JSONResponse([report.change_dict(c, found.seq_of) for c in found.changes])


@router.get("/targets/{name}/diff", response_model=schema.Diff,
            summary="Word diff between two versions, as `monitor diff NAME FROM TO --json`",
            description="Without `from` and `to`: the latest change. "
                        "With only `from`: from that version to the latest. "
                        "With only `to`: from the version before it to it.")
def diff(request: Request, name: str, from_: str | None = Query(None, alias="from"), to: str | None = Query(None)):
    web = web_of(request)
    target = target_or_404(web.store, name)
    if to is not None:
        new = version_or_404(web.store, target, to)
    else:
        latest = queries.latest_versions(web.store, target.id, 1)
        if not latest:
            raise HTTPException(404, f"{name} has no versions yet")
        new = latest[0]
    if from_ is not None:
        old = version_or_404(web.store, target, from_)
    else:
        earlier = queries.latest_versions(web.store, target.id, 1, below=new.seq)
        if not earlier:
            raise HTTPException(404, f"{name} has no version before v{new.seq}: nothing to compare yet")
        old = earlier[0]
    return JSONResponse(report.diff_dict(name, old, new, web.texts.diff(old.text_sha, new.text_sha)))


@router.get("/changes", response_model=list[schema.TargetChange], summary="Changes across targets, newest first")
def changes(request: Request, kind: list[schema.ChangeKind] = Query(None, description="only these kinds"),
            target: str | None = Query(None, description="only this target"),
            before: int | None = Query(None, ge=1, le=queries.MAX_INT,
                                       description="only changes with a smaller id (paging)"),
            limit: int = Query(100, ge=1, le=1000)):
    store = web_of(request).store
    target_id = target_or_404(store, target).id if target else None
    found = queries.changes(store, target_id, tuple(kind) if kind else None, before, limit)
    return JSONResponse([report.target_change_dict(c, found.seq_of, c.target_name) for c in found.changes])


@router.get("/changes/{change_id}", response_model=schema.TargetChange, summary="One change")
def change(request: Request, change_id: int):
    try:
        detail = queries.change(web_of(request).store, change_id)
    except queries.NotFound as exc:
        raise HTTPException(404, str(exc)) from None
    return JSONResponse(report.target_change_dict(detail.change, detail.seq_of, detail.target.name))


@router.get("/alerts", response_model=list[schema.Alert],
            summary="The alert outbox, newest first, as `monitor alerts --json`")
def alerts(request: Request, failed: bool = Query(False, description="only alerts that were given up on"),
           limit: int = Query(200, ge=1, le=5000)):
    return JSONResponse(report.alert_list(web_of(request).store, failed_only=failed, limit=limit))


@router.get("/search", response_model=list[schema.SearchHit],
            summary="Targets whose stored text ever contained a phrase",
            description="Case-insensitive; any whitespace between words. Scans every stored version's text.")
def search(request: Request, q: str = Query(..., min_length=2, description="the phrase")):
    web = web_of(request)
    return JSONResponse(search_texts(web.store, web.texts, q))
