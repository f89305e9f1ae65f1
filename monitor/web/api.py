"""The JSON API under /api/: the same documents as the CLI's `--json` output (schema.py's models,
filled from read.py's rows; lists built by report.py), served as they are built."""
from __future__ import annotations

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from .. import read, report, schema
from ..extract import parse_text
from .context import web_of
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
    return JSONResponse(report.history(web_of(request).store, name, checks=checks))


@router.get("/targets/{name}/versions", response_model=list[schema.Version],
            summary="A target's versions, newest first")
def versions(request: Request, name: str):
    store = web_of(request).store
    target = read.target(store, name)
    stamps = read.stamps_by_head(store, target.id)
    return JSONResponse([schema.Version.of(v, name, stamps).doc() for v in read.versions(store, target.id)])


@router.get("/targets/{name}/versions/{version}", response_model=schema.VersionText,
            summary="A version's extracted text, as `monitor show NAME VERSION --json`")
def version_text(request: Request, name: str, version: str):
    web = web_of(request)
    row = read.version(web.store, read.target(web.store, name), version)
    return JSONResponse(schema.VersionText.of(name, row, parse_text(web.texts.text(row.text_sha))).doc())


@router.get("/targets/{name}/changes", response_model=list[schema.Change], summary="A target's changes, newest first")
def target_changes(request: Request, name: str):
    store = web_of(request).store
    found = read.changes(store, read.target(store, name).id, limit=None)
    return JSONResponse([schema.Change.of(c, found.seq_of).doc() for c in found.changes])


@router.get("/targets/{name}/diff", response_model=schema.Diff,
            summary="Word diff between two versions, as `monitor diff NAME FROM TO --json`",
            description="Without `from` and `to`: the latest change. "
                        "With only `from`: from that version to the latest. "
                        "With only `to`: from the version before it to it.")
def diff(request: Request, name: str, from_: str | None = Query(None, alias="from"), to: str | None = Query(None)):
    web = web_of(request)
    target = read.target(web.store, name)
    if to is not None:
        new = read.version(web.store, target, to)
    else:
        latest = read.latest_versions(web.store, target.id, 1)
        if not latest:
            raise read.NotFound(f"{name} has no versions yet")
        new = latest[0]
    if from_ is not None:
        old = read.version(web.store, target, from_)
    else:
        earlier = read.latest_versions(web.store, target.id, 1, below=new.seq)
        if not earlier:
            raise read.NotFound(f"{name} has no version before v{new.seq}: nothing to compare yet")
        old = earlier[0]
    return JSONResponse(schema.Diff.of(name, old, new, web.texts.diff(old.text_sha, new.text_sha)).doc())


@router.get("/changes", response_model=list[schema.TargetChange], summary="Changes across targets, newest first")
def changes(request: Request, kind: list[schema.ChangeKind] = Query(None, description="only these kinds"),
            target: str | None = Query(None, description="only this target"),
            before: int | None = Query(None, ge=1, le=read.MAX_INT,
                                       description="only changes with a smaller id (paging)"),
            limit: int = Query(100, ge=1, le=1000)):
    store = web_of(request).store
    target_id = read.target(store, target).id if target else None
    found = read.changes(store, target_id, tuple(kind) if kind else None, before, limit)
    return JSONResponse([schema.TargetChange.of(c, found.seq_of, target=c.target_name).doc() for c in found.changes])


@router.get("/changes/{change_id}", response_model=schema.TargetChange, summary="One change")
def change(request: Request, change_id: int):
    detail = read.change(web_of(request).store, change_id)
    return JSONResponse(schema.TargetChange.of(detail.change, detail.seq_of, target=detail.target.name).doc())


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
