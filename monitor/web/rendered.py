"""What the browser fetcher keeps beside a rendered capture (monitor/browser.py): a version's
full-page screenshot, shown on the version and change pages, and its document's HTTP response
as served before rendering, to download."""
from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from .. import read
from .context import web_of

router = APIRouter(include_in_schema=False)

# A screenshot is an image and nothing else: no script, no sniffing it as something else.
SAFE_HEADERS = {"Content-Security-Policy": "sandbox; default-src 'none'", "Cross-Origin-Resource-Policy": "same-origin",
                 "Cache-Control": "private, max-age=86400"}


def _kept(request: Request, name: str, version: str, column: str, what: str):
    web = web_of(request)
    v = read.version(web.store, read.target(web.store, name), version)
    digest = getattr(v, column)
    if not digest:
        raise read.NotFound(f"{name} v{v.seq} has no {what} (only pages fetched with fetcher = \"browser\" do)")
    return v, web.store.snapshots.get(digest)


@router.get("/targets/{name}/versions/{version}/screenshot.png")
def screenshot(request: Request, name: str, version: str):
    """The version's full-page screenshot (PNG)."""
    _, png = _kept(request, name, version, "screenshot_sha", "screenshot")
    return Response(png, media_type="image/png", headers=SAFE_HEADERS)


@router.get("/targets/{name}/versions/{version}/response")
def response(request: Request, name: str, version: str):
    """The document's HTTP response before rendering (status line, headers, body), to download."""
    v, message = _kept(request, name, version, "response_sha", "HTTP response kept apart")
    return Response(message, media_type="application/octet-stream", headers={
        **SAFE_HEADERS, "Content-Disposition": f'attachment; filename="{name}-v{v.seq}-response.http"'})
