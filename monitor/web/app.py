"""The ASGI app: pages, JSON API and feeds over the store. It only reads what the pipeline stored."""
from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.staticfiles import StaticFiles

from ..config import Settings
from ..read import NotFound
from ..snapshots import SnapshotError
from ..store import Store
from . import api, captures, feeds, login, metrics, pages, rendered
from .auth import Auth, Guard
from .context import LiveSettings, Web, render_page, templates
from .limits import BodyLimit
from .texts import Texts

HERE = Path(__file__).parent
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


def create_app(settings: Settings, store: Store, auth: Auth | None = None) -> FastAPI:
    auth = auth or Auth.from_settings(settings.monitor)
    app = FastAPI(title="monitor", version="1", openapi_url="/api/openapi.json", docs_url=None, redoc_url=None,
                  description="Read-only JSON API over the monitor's history: targets, versions, changes, word "
                              "diffs between any two versions, search over stored text, and the alert outbox. "
                              "The shapes are those of the CLI's `--json` output.")
    app.state.web = Web(store, LiveSettings(settings), Texts(store.snapshots), auth, templates())
    app.include_router(api.router, prefix="/api")
    for module in (pages, captures, feeds, login, rendered, metrics):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.add_exception_handler(HTTPException, _error)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(NotFound, _not_found)
    app.add_exception_handler(SnapshotError, _damaged)
    app.add_middleware(Guard, auth=auth, allowed_hosts=None if auth.required else _hosts(settings))
    app.add_middleware(BodyLimit)  # the outermost: bodies are capped before anyone is authenticated
    return app


def _hosts(settings: Settings) -> set[str]:
    """Without a login, the Host names the UI answers to: loopback, and base_url's host."""
    hosts = set(LOOPBACK_HOSTS)
    if settings.monitor.base_url:
        hosts.add((urlsplit(settings.monitor.base_url).hostname or "").lower())
    return hosts


def _wants_json(request: Request) -> bool:
    path = request.url.path[len(request.scope.get("root_path", "")):]
    return path.startswith(("/api/", "/raw/")) or path.endswith((".atom", ".rss"))


def _page(request: Request, code: int, message: str, headers=None):
    if _wants_json(request):
        return JSONResponse({"detail": message}, status_code=code, headers=headers)
    response = render_page(request, "error.html", code=code, message=message)
    if headers:
        response.headers.update(headers)
    return response


async def _error(request: Request, exc: HTTPException):
    return _page(request, exc.status_code, exc.detail, exc.headers)


async def _invalid(request: Request, exc: RequestValidationError):
    """The API answers 422 with FastAPI's details; a page, 400 in words."""
    if _wants_json(request):
        return await request_validation_exception_handler(request, exc)
    problems = "; ".join(f"{'.'.join(map(str, e['loc'][1:]))}: {e['msg']}" for e in exc.errors())
    return _page(request, 400, f"Bad address ({problems})")


async def _not_found(request: Request, exc: NotFound):
    """No such target, version or change: 404, naming it."""
    return _page(request, 404, str(exc))


async def _damaged(request: Request, exc: SnapshotError):
    """A capture or text missing or damaged on disk: say which, never show half a page."""
    return _page(request, 500, str(exc))
