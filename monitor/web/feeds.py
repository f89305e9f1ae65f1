"""RSS 2.0 and Atom feeds of changes (and of pages gone), global and per target.

Each entry carries the summary and the changed passages (removed words struck through, added words
underlined, with a sentence of context) as HTML, so a feed reader shows the diff itself; the entry
links to the change page. Entry ids are the change pages' URLs.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import format_datetime

from fastapi import APIRouter, Request
from fastapi.responses import Response
from jinja2 import Environment

from .. import kinds, read
from ..detect import keyword_hits
from ..store import Store
from .context import web_of
from .render import utc

router = APIRouter(include_in_schema=False)

SIZE = 50
# Characters XML 1.0 forbids; a hostile page's text may carry them.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


@dataclass
class Entry:
    id: str
    title: str
    link: str
    updated: datetime
    summary: str
    html: str
    kind: str

    @property
    def rfc822(self) -> str:
        return format_datetime(utc(self.updated), usegmt=True)


def entries(env: Environment, store: Store, base: str, target_id: int | None, keywords_of) -> list[Entry]:
    """The newest changes a reviewer reads (added, removed, edited, restored) and pages gone."""
    found = read.changes(store, target_id, kinds=read.EDITS, limit=SIZE)
    piece = env.get_template("feed_entry.html")
    out = []
    for change in found.changes:
        seq = found.seq_of.get
        versions = (f"v{seq(change.from_version_id)} → v{seq(change.to_version_id)}"
                    if change.from_version_id else f"v{seq(change.to_version_id)}")
        link = f"{base}/changes/{change.id}"
        hits = keyword_hits(keywords_of(change.target_name, change.target_site_id), change.passages or [])
        out.append(Entry(
            id=link, link=link, updated=change.detected_at, summary=change.summary, kind=change.kind,
            title=f"{kinds.title(change.kind)}: {change.target_name} ({versions})",
            html=piece.render(change=change, link=link, keywords=hits, versions=versions)))
    for event in read.gone_events(store, target_id, limit=SIZE):
        link = f"{base}/targets/{event.target_name}"
        out.append(Entry(id=f"{link}#event-{event.id}", link=link, updated=event.created_at, kind="gone",
                         title=f"{kinds.title('gone')}: {event.target_name}", summary=event.summary,
                         html=piece.render(event=event, link=link)))
    out.sort(key=lambda e: utc(e.updated), reverse=True)
    return out[:SIZE]


def render(env: Environment, kind: str, title: str, self_url: str, page_url: str, items: list[Entry]) -> str:
    """kind: 'atom' or 'rss'."""
    updated = max((utc(e.updated) for e in items), default=datetime(2000, 1, 1, tzinfo=timezone.utc))
    text = env.get_template(f"feed.{kind}.xml").render(
        title=title, self_url=self_url, page_url=page_url, entries=items, updated=updated,
        updated_rfc822=format_datetime(updated, usegmt=True))
    return _NOT_XML.sub("", text)


MEDIA_TYPES = {"atom": "application/atom+xml; charset=utf-8", "rss": "application/rss+xml; charset=utf-8"}


# ---- routes -------------------------------------------------------------------------------------

def _feed(request: Request, kind: str, name: str | None) -> Response:
    web = web_of(request)
    target_id = read.target(web.store, name).id if name else None
    base = (web.live.get().monitor.base_url or str(request.base_url)).rstrip("/")
    sites = web.store.site_names()
    items = entries(web.env, web.store, base, target_id, lambda name, site_id: web.live.keywords(name, sites.get(site_id)))
    page_url = f"{base}/targets/{name}" if name else f"{base}/"
    self_url = f"{base}/targets/{name}/changes.{kind}" if name else f"{base}/changes.{kind}"
    title = f"monitor: changes to {name}" if name else "monitor: all changes"
    return Response(render(web.env, kind, title, self_url, page_url, items), media_type=MEDIA_TYPES[kind])


@router.get("/changes.atom")
def atom(request: Request):
    return _feed(request, "atom", None)


@router.get("/changes.rss")
def rss(request: Request):
    return _feed(request, "rss", None)


@router.get("/targets/{name}/changes.atom")
def target_atom(request: Request, name: str):
    return _feed(request, "atom", name)


@router.get("/targets/{name}/changes.rss")
def target_rss(request: Request, name: str):
    return _feed(request, "rss", name)
