"""The HTML pages. Server-rendered: they work without JavaScript."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request

from .. import read
from ..detect import keyword_hits
from .. import chain
from ..extract import parse_text
from ..report import alert_list, site_list as sites_of
from . import render
from .context import feed_links, keywords_of, render_page, web_of
from .search import search as search_texts

router = APIRouter(include_in_schema=False)

PER_PAGE = 100


# ---- dashboard and lists ------------------------------------------------------------------------

DASHBOARD_ROWS = 500  # a site of thousands of posts: the first rows, and a filter to narrow them

@router.get("/")
def dashboard(request: Request, q: str = "", tag: str = "", status: str = "", all: bool = False):
    web = web_of(request)
    rows = read.overview(web.store, include_inactive=all, paused=web.live.get().paused)
    configured = {t.name: t for t in web.live.get().config.targets}
    tags = sorted({tag for t in configured.values() for tag in t.tags})
    needle = q.strip().lower()

    def tags_of(row) -> list[str]:
        return list(configured[row.target.name].tags) if row.target.name in configured else []

    def shown(row) -> bool:
        haystack = " ".join([row.target.name, row.target.url, *tags_of(row)]).lower()
        return ((not needle or needle in haystack) and (not tag or tag in tags_of(row))
                and (not status or row.target.status == status))

    matching = [r for r in rows if shown(r)]
    return render_page(request, "dashboard.html", rows=matching[:DASHBOARD_ROWS], matching=len(matching), total=len(rows),
                       counts=Counter(r.target.status for r in rows), tags=tags, tags_of=tags_of, q=q, tag=tag,
                       status=status, all=all, recent=read.changes(web.store, kinds=read.EDITS, limit=10),
                       failed_alerts=read.failed_alerts(web.store))


@router.get("/changes")
def change_list(request: Request, kind: str = "", before: int | None = Query(None, ge=1, le=read.MAX_INT),
                everything: bool = False):
    web = web_of(request)
    kinds = (kind,) if kind else (None if everything else read.EDITS)
    found = read.changes(web.store, kinds=kinds, before=before, limit=PER_PAGE)
    older = None
    if found.more:
        older = "?" + urlencode({k: v for k, v in (("kind", kind), ("everything", "1" if everything else ""),
                                                   ("before", found.changes[-1].id)) if v})
    return render_page(request, "changes.html", found=found, kind=kind, everything=everything, older=older)


@router.get("/sites")
def site_list(request: Request):
    web = web_of(request)
    return render_page(request, "sites.html", sites=sites_of(web.store, web.live.get()))


@router.get("/alerts")
def outbox(request: Request, failed: bool = False):
    web = web_of(request)
    rows = alert_list(web.store, failed_only=failed)
    return render_page(request, "alerts.html", rows=rows, failed=failed, failed_count=read.failed_alerts(web.store))


@router.get("/search")
def search(request: Request, q: str = ""):
    web = web_of(request)
    hits = search_texts(web.store, web.texts, q) if q.strip() else []
    return render_page(request, "search.html", q=q, hits=hits, mark=render.Marker([q]),
                       too_short=bool(q.strip()) and len("".join(q.split())) < 2)


# ---- one target ---------------------------------------------------------------------------------

@router.get("/targets/{name}")
def target(request: Request, name: str, page: int = Query(1, ge=1), per_page: int = Query(PER_PAGE, ge=1, le=1000)):
    web = web_of(request)
    row = read.target(web.store, name)
    timeline = read.timeline(web.store, row.id, page, per_page)
    checks, check_seqs = read.recent_checks(web.store, row.id)
    size = {"per_page": per_page} if per_page != PER_PAGE else {}
    pages = {}
    if timeline.page > 1:
        pages["newer"] = "?" + urlencode({"page": timeline.page - 1, **size})
    if timeline.page < timeline.pages:
        pages["older"] = "?" + urlencode({"page": timeline.page + 1, **size})
    site = web.store.site_names().get(row.site_id) if row.site_id else None
    configured = web.live.target(name) or (web.live.get().site(site) if site else None)
    return render_page(request, "target.html", alternates=feed_links(request, name), target=row, timeline=timeline,
                       configured=configured, site=site, checks=checks, check_seqs=check_seqs, pages=pages,
                       head_stamp=read.stamps_by_head(web.store, row.id).get(row.chain_head))


@dataclass
class DiffView:
    """A diff as a page draws it."""

    view: str  # inline | side
    items: list  # render.fold() of Lines or Rows
    stats: dict
    fallback: bool
    identical: bool


def diff_view(web, old, new, view: str) -> DiffView:
    """old None: the whole of `new`, as a target's first version."""
    if old is None:
        lines = parse_text(web.texts.text(new.text_sha)).lines
        ops, stats, fallback = [[0, "".join(line + "\n" for line in lines)]], {}, False
    else:
        result = web.texts.diff(old.text_sha, new.text_sha)
        ops, stats, fallback = result["ops"], result["stats"], result["fallback"]
    items = render.side_by_side(ops) if view == "side" else render.inline(ops)
    identical = old is not None and old.text_sha == new.text_sha
    return DiffView("side" if view == "side" else "inline", render.fold(items), stats, fallback, identical)


@router.get("/changes/{change_id}")
def change(request: Request, change_id: int, view: str = "inline"):
    web = web_of(request)
    detail = read.change(web.store, change_id)
    c = detail.change
    old, new = detail.version(c.from_version_id), detail.version(c.to_version_id)
    keywords = keywords_of(web, detail.target)
    return render_page(request, "change.html", alternates=feed_links(request, detail.target.name), detail=detail,
                       change=c, target=detail.target, old=old, new=new,
                       restored=detail.version(c.restored_version_id), diff=diff_view(web, old, new, view),
                       hits=keyword_hits(keywords, c.passages or []), mark=render.Marker(keywords))


@router.get("/targets/{name}/compare")
def compare(request: Request, name: str, from_: str | None = Query(None, alias="from"), to: str | None = None,
            view: str = "inline"):
    web = web_of(request)
    row = read.target(web.store, name)
    latest = read.latest_versions(web.store, row.id, 2)
    if not latest:
        raise read.NotFound(f"{name} has no versions yet")
    new = read.version(web.store, row, to) if to else latest[0]
    old = read.version(web.store, row, from_) if from_ else (latest[1] if len(latest) > 1 else None)
    if old is not None and old.seq > new.seq:
        old, new = new, old
    keywords = keywords_of(web, row)
    return render_page(request, "compare.html", alternates=feed_links(request, name), target=row, old=old, new=new,
                       newest=latest[0].seq, diff=diff_view(web, old, new, view) if old else None,
                       mark=render.Marker(keywords))


@router.get("/targets/{name}/versions/{version}")
def version(request: Request, name: str, version: str):
    web = web_of(request)
    row = read.target(web.store, name)
    v = read.version(web.store, row, version)
    doc = parse_text(web.texts.text(v.text_sha))
    record_sha = chain.digest(v)
    return render_page(request, "version.html", alternates=feed_links(request, name), target=row, version=v, doc=doc,
                       newest=read.latest_versions(web.store, row.id, 1)[0].seq,
                       mark=render.Marker(keywords_of(web, row)), record_sha=record_sha,
                       stamp=read.stamps_by_head(web.store, row.id).get(record_sha))
