"""Logging in and out: the only forms, each with a CSRF token (see auth.py)."""
from __future__ import annotations

from urllib.parse import parse_qs

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import RedirectResponse

from .auth import CSRF_COOKIE, SESSION_COOKIE, SESSION_SECONDS, Blocked, client_key, cookies, local_path
from .context import render_page, root, web_of

router = APIRouter(include_in_schema=False)


async def _form(request: Request) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs((await request.body()).decode("utf-8", "replace")).items()}


@router.get("/login")
def login_form(request: Request, next: str = "/"):
    if not web_of(request).auth.required:
        return RedirectResponse(root(request) + "/", status_code=303)
    return render_page(request, "login.html", alternates=[], next=local_path(next), error=None)


@router.post("/login")
async def login(request: Request):
    web = web_of(request)
    if not web.auth.required:
        return RedirectResponse(root(request) + "/", status_code=303)
    form = await _form(request)
    target = local_path(form.get("next"))
    if not web.auth.csrf_ok(cookies(request.headers).get(CSRF_COOKIE), form.get("csrf")):
        return render_page(request, "login.html", code=403, alternates=[], next=target,
                           error="The form had expired: please try again.")
    try:
        right = web.auth.verify(client_key(request.scope), form.get("password", ""))
    except Blocked as exc:
        response = render_page(request, "login.html", code=429, alternates=[], next=target, error=str(exc))
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    if not right:
        return render_page(request, "login.html", code=401, alternates=[], next=target, error="Wrong password or token.")
    response = RedirectResponse(root(request) + target, status_code=303)
    response.set_cookie(SESSION_COOKIE, web.auth.new_session(), max_age=SESSION_SECONDS, httponly=True,
                        samesite="lax", path="/", secure=request.url.scheme == "https")
    return response


@router.post("/logout")
async def logout(request: Request):
    web = web_of(request)
    form = await _form(request)
    if not web.auth.csrf_ok(cookies(request.headers).get(CSRF_COOKIE), form.get("csrf")):
        raise HTTPException(403, "The form had expired: go back, reload the page and try again.")
    response = RedirectResponse(root(request) + "/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
