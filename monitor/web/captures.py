"""Raw captures, as fetched: shown only as escaped source, or served under a sandboxing
Content-Security-Policy for the version page's sandboxed frame (or to download)."""
from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from .. import read, timestamps
from ..fetch import decode
from .context import feed_links, render_page, web_of

router = APIRouter(include_in_schema=False)

# A raw capture runs nothing and loads nothing: `sandbox` makes it an opaque origin with scripts,
# forms, popups and plugins off even when the URL is opened directly; only its inline styles and
# data: images render.
CAPTURE_POLICY = ("sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:; "
                  "frame-ancestors 'self'")
CAPTURE_TYPES = ("text/html", "application/xhtml+xml", "text/plain", "text/xml", "application/xml")


@router.get("/targets/{name}/versions/{version}/source")
def source(request: Request, name: str, version: str):
    web = web_of(request)
    row = read.target(web.store, name)
    v = read.version(web.store, row, version)
    raw = web.store.snapshots.get(v.raw_sha)
    text, _ = decode(raw, _content_type(v.headers))  # as the check read it, whatever the header claims
    return render_page(request, "source.html", alternates=feed_links(request, name), target=row, version=v,
                       source=text, size=len(raw))


@router.get("/raw/{name}/{version}")
def raw(request: Request, name: str, version: str, download: bool = False):
    """The capture as fetched, for the sandboxed frame on the version page (or to download)."""
    web = web_of(request)
    row = read.target(web.store, name)
    v = read.version(web.store, row, version)
    body = web.store.snapshots.get(v.raw_sha)
    headers = {"Content-Security-Policy": CAPTURE_POLICY, "X-Frame-Options": "SAMEORIGIN",
               "Cross-Origin-Resource-Policy": "same-origin", "Cache-Control": "private, max-age=86400"}
    if download:
        headers["Content-Disposition"] = f'attachment; filename="{name}-v{v.seq}.html"'
        return Response(body, media_type="application/octet-stream", headers=headers)
    return Response(body, headers={**headers, "Content-Type": _capture_type(v.headers)})


@router.get("/targets/{name}/timestamps/{head}.tsr")
def timestamp_token(request: Request, name: str, head: str):
    """A trusted timestamp's token (the TSA's reply), to download and check with `openssl ts -verify`."""
    web = web_of(request)
    row = read.target(web.store, name)
    stamp = read.stamps_by_head(web.store, row.id).get(head.lower())
    if stamp is None:
        raise read.NotFound(f"{name} has no trusted timestamp of head {head[:64]!r}")
    return Response(timestamps.token_of(web.store, stamp), media_type=timestamps.REPLY_TYPE,
                    headers={"Content-Disposition": f'attachment; filename="{name}-{stamp.head[:12]}.tsr"'})


def _content_type(headers: dict | None) -> str:
    return next((v for k, v in (headers or {}).items() if k.lower() == "content-type"), "")


def _capture_type(headers: dict | None) -> str:
    value = _content_type(headers)
    return value if value.split(";")[0].strip().lower() in CAPTURE_TYPES else "text/plain; charset=utf-8"
