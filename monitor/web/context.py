"""What every route of the web UI shares: the app's state (store, live settings, texts, login,
templates) and rendering a page. The routes' modules (api, pages, captures, feeds, login) import
this; nothing here imports them. (What is not found is read.NotFound, answered 404 by app.py.)"""
from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, select_autoescape

from .. import config, kinds
from ..config import Settings
from ..times import iso
from ..store import Store
from . import render
from .auth import CSRF_COOKIE, SESSION_COOKIE, Auth, cookies
from .texts import Texts

RELOAD_EVERY = 2.0  # seconds between looks at the config file's modification time


class LiveSettings:
    """The config as the UI reads it (tags, keywords, base_url), re-read when the file changes,
    as the daemon does; a config with mistakes is ignored until fixed."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._watch = config.FileWatch(settings.path)
        self._looked = time.monotonic()

    def get(self) -> Settings:
        now = time.monotonic()
        if now - self._looked >= RELOAD_EVERY:
            self._looked = now
            if self._watch.changed():
                try:
                    self.settings = config.load(self.settings.path)
                except config.ConfigError:
                    pass
        return self.settings

    def target(self, name: str):
        """The configured target of that name, or None (no longer in the config)."""
        return next((t for t in self.get().config.targets if t.name == name), None)

    def keywords(self, name: str, site: str | None = None) -> list[str]:
        """The keywords of a target, or of the site a discovered post belongs to."""
        watch = self.get().watch(name, site)
        return list(watch.keywords) if watch else []


@dataclass
class Web:
    """What every route needs, kept on app.state.web."""

    store: Store
    live: LiveSettings
    texts: Texts
    auth: Auth
    env: Environment


def keywords_of(web: "Web", target) -> list[str]:
    """The keywords that apply to a target row (a discovered post: its site's)."""
    site = web.store.site_names().get(target.site_id) if target.site_id else None
    return web.live.keywords(target.name, site)


def web_of(request: Request) -> Web:
    """What every route needs."""
    return request.app.state.web


def templates() -> Environment:
    env = Environment(loader=PackageLoader("monitor.web", "templates"), autoescape=select_autoescape(("html", "xml")),
                      trim_blocks=True, lstrip_blocks=True, auto_reload=False)
    env.globals.update(t=render.time_tag, kind_title=kinds.title, edit_kinds=kinds.EDITS)
    env.filters["iso"] = lambda when: iso(render.utc(when))
    return env


def root(request: Request) -> str:
    return request.scope.get("root_path", "")


def feed_links(request: Request, target: str | None = None) -> list[dict]:
    """<link rel="alternate"> for every page: the target's feeds first, when there is one."""
    base = root(request)
    links = []
    if target:
        for kind in ("atom", "rss"):
            links.append({"type": f"application/{kind}+xml", "title": f"Changes to {target} ({kind.upper()})",
                          "href": f"{base}/targets/{target}/changes.{kind}"})
    for kind in ("atom", "rss"):
        links.append({"type": f"application/{kind}+xml", "title": f"All changes ({kind.upper()})",
                      "href": f"{base}/changes.{kind}"})
    return links


def render_page(request: Request, template: str, code: int = 200, alternates: list | None = None,
                **context) -> HTMLResponse:
    """A template rendered for this request: its feeds advertised (the global ones unless
    `alternates` says otherwise), and a CSRF token for its forms when there is a login."""
    web = web_of(request)
    jar = cookies(request.headers)
    csrf_cookie = jar.get(CSRF_COOKIE) or ""
    new_cookie = web.auth.required and not csrf_cookie.isalnum()
    if new_cookie:
        csrf_cookie = secrets.token_hex(16)
    html = web.env.get_template(template).render(
        root=root(request), feeds=feed_links(request) if alternates is None else alternates,
        logged_in=web.auth.required and SESSION_COOKIE in jar,
        csrf=web.auth.csrf_token(csrf_cookie) if web.auth.required else "", **context)
    response = HTMLResponse(html, status_code=code)
    if new_cookie:
        response.set_cookie(CSRF_COOKIE, csrf_cookie, httponly=True, samesite="strict", path="/",
                            secure=request.url.scheme == "https")
    return response
