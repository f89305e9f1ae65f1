"""Who may read the UI, and the guard every request passes.

On loopback with no `web_password` or `web_token` set, nobody logs in; on any other address one of
them is required, and the server refuses to start without. With either set, browsers log in with
a form (a signed, HttpOnly, SameSite session cookie); tools send `Authorization: Bearer <token>`,
or HTTP Basic with the password or token as the password (feed readers do this). The login and
logout forms carry a CSRF token, and every state-changing request must come from this origin.
Every way of presenting the password or token (the form, Bearer, Basic) passes one limit on
failures per client address: past it, even the right one is refused (429) until the window passes.

Without login, a Host check stops DNS-rebinding pages from reading the UI through the browser.
Every response gets the security headers: a strict Content-Security-Policy (no inline script,
nothing from other origins), no framing, no sniffing, and no Referer to other sites (so a monitored site never
learns the UI's address when a reviewer follows a link to it).
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import math
import secrets
import time
from collections import deque
from http.cookies import SimpleCookie
from urllib.parse import quote, urlsplit

from starlette.datastructures import Headers
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse

SESSION_COOKIE = "monitor_session"
CSRF_COOKIE = "monitor_csrf"
SESSION_SECONDS = 7 * 86400
LOGIN_FAILURES = 10  # per client address within LOGIN_WINDOW seconds, then 429
LOGIN_WINDOW = 600.0
FORGET_AFTER = 10_000  # addresses with failed logins kept before the quiet ones are dropped

UI_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
             "connect-src 'self'; form-action 'self'; frame-src 'self'; frame-ancestors 'none'; base-uri 'none'")
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
]
PUBLIC_PATHS = ("/login", "/static/")
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


class ServeError(Exception):
    """The server must not start as asked (worded for the person who asked)."""


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Blocked(Exception):
    """Too many failed logins from one client address."""

    def __init__(self, retry_after: int):
        super().__init__(f"Too many failed attempts from your address: try again in {retry_after} seconds.")
        self.retry_after = retry_after


def client_key(scope) -> str:
    """Whom the failed-login limit counts: the client's address, an IPv6 client's /64 (one host
    often holds a whole /64, so counting single addresses would not limit it)."""
    host = (scope.get("client") or ("?",))[0]
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if address.version == 4:
        return str(address)
    if address.ipv4_mapped:
        return str(address.ipv4_mapped)
    return str(ipaddress.ip_network(f"{address}/64", strict=False))


class Auth:
    """The configured secrets and what is derived from them: session and CSRF signatures, and a
    per-address limit on failed logins that every credential path passes (see verify())."""

    def __init__(self, password: str | None = None, token: str | None = None):
        self.secrets = [s.encode("utf-8") for s in (password, token) if s]
        # Sessions survive a restart and die when the password or token changes. A slow derivation,
        # so that a leaked session cookie is no fast way to test guesses of the password.
        self._session_key = hashlib.pbkdf2_hmac("sha256", b"\0".join(self.secrets), b"monitor-session", 100_000)
        self._csrf_key = secrets.token_bytes(32)
        self._failures: dict[str, deque] = {}

    @classmethod
    def from_settings(cls, monitor) -> "Auth":
        return cls(monitor.web_password, monitor.web_token)

    @property
    def required(self) -> bool:
        return bool(self.secrets)

    def check_binding(self, host: str) -> None:
        if not self.required and not is_loopback(host):
            raise ServeError(
                f"refusing to serve on {host}: anyone who can reach it could read the history. "
                "Set web_password or web_token in [monitor] (e.g. web_password = \"${MONITOR_WEB_PASSWORD}\"), "
                "or bind to 127.0.0.1")

    def verify(self, client: str, value: str) -> bool:
        """Is `value` the password or token? The only place a guess is checked: raises Blocked
        (without looking at the guess) once `client` has failed too often, and counts a failure."""
        self._check_not_blocked(client)
        given = value.encode("utf-8")
        # Compare with every secret, always, so timing tells nothing about which one came close.
        if any([hmac.compare_digest(given, s) for s in self.secrets]):
            return True
        self._failed(client)
        return False

    def authorization_ok(self, client: str, header: str | None) -> bool:
        """An Authorization header with the password or token (Bearer, or Basic's password)."""
        secret = _presented(header)
        return secret is not None and self.verify(client, secret)

    def _sign(self, key: bytes, message: str) -> str:
        return hmac.new(key, message.encode("ascii"), hashlib.sha256).hexdigest()

    def new_session(self, now: float | None = None) -> str:
        expires = str(int((now or time.time()) + SESSION_SECONDS))
        return f"{expires}.{self._sign(self._session_key, expires)}"

    def session_ok(self, value: str | None, now: float | None = None) -> bool:
        expires, _, signature = (value or "").partition(".")
        if not expires.isdigit() or int(expires) < (now or time.time()):
            return False
        return hmac.compare_digest(signature, self._sign(self._session_key, expires))

    def csrf_token(self, cookie: str) -> str:
        return self._sign(self._csrf_key, cookie)

    def csrf_ok(self, cookie: str | None, submitted: str | None) -> bool:
        if not cookie or not submitted or not cookie.isalnum():
            return False
        return hmac.compare_digest(submitted, self.csrf_token(cookie))

    def _check_not_blocked(self, client: str) -> None:
        now = time.monotonic()
        failures = self._failures.get(client)
        while failures and failures[0] <= now - LOGIN_WINDOW:
            failures.popleft()
        if failures and len(failures) >= LOGIN_FAILURES:
            # Free again when the failure that reached the limit leaves the window.
            raise Blocked(max(1, math.ceil(failures[-LOGIN_FAILURES] + LOGIN_WINDOW - now)))

    def _failed(self, client: str) -> None:
        now = time.monotonic()
        if len(self._failures) > FORGET_AFTER:  # many addresses: forget those quiet for a window
            self._failures = {c: f for c, f in self._failures.items() if f and f[-1] >= now - LOGIN_WINDOW}
        self._failures.setdefault(client, deque()).append(now)


def _presented(header: str | None) -> str | None:
    """The secret an Authorization header offers (Bearer's token, Basic's password), or None."""
    scheme, _, value = (header or "").partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer":
        return value
    if scheme.lower() == "basic":
        try:
            return base64.b64decode(value, validate=True).decode("utf-8").partition(":")[2]
        except (binascii.Error, UnicodeDecodeError):
            return None
    return None


def cookies(headers: Headers) -> dict[str, str]:
    jar = SimpleCookie()
    try:
        jar.load(headers.get("cookie", ""))
    except Exception:  # a malformed Cookie header is no cookie at all
        return {}
    return {key: morsel.value for key, morsel in jar.items()}


def local_path(target: str | None) -> str:
    """A redirect target that stays on this site (a path, never //host or a scheme)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


class Guard:
    """ASGI middleware: Host check, authentication, same-origin for unsafe methods, headers."""

    def __init__(self, app, auth: Auth, allowed_hosts: set[str] | None):
        self.app = app
        self.auth = auth
        self.allowed_hosts = allowed_hosts

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = Headers(scope=scope)
        path, root = scope["path"], scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root):]
        refusal = self._refusal(scope, headers, path)
        send = _with_security_headers(send)
        if refusal is not None:
            return await refusal(scope, receive, send)
        await self.app(scope, receive, send)

    def _refusal(self, scope, headers: Headers, path: str):
        host = headers.get("host", "").lower()
        if self.allowed_hosts is not None and _hostname(host) not in self.allowed_hosts:
            return PlainTextResponse(f"unknown Host {host!r}: open the UI as http://127.0.0.1 or localhost",
                                     status_code=421)
        if scope["method"] not in SAFE_METHODS and not _same_origin(headers, scope):
            return PlainTextResponse("cross-site request refused", status_code=403)
        if not self.auth.required or path.startswith(PUBLIC_PATHS):
            return None
        # A session cookie first: it is signed, not guessed, so a logged-in reader is never
        # locked out by someone guessing from the same address.
        if self.auth.session_ok(cookies(headers).get(SESSION_COOKIE)):
            return None
        try:
            if self.auth.authorization_ok(client_key(scope), headers.get("authorization")):
                return None
        except Blocked as exc:
            return too_many(path, exc)
        return _unauthenticated(scope, path)


def _hostname(host: str) -> str:
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _same_origin(headers: Headers, scope) -> bool:
    if headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        return False
    origin = headers.get("origin")
    if origin is None:
        return True
    return origin != "null" and urlsplit(origin).netloc.lower() == headers.get("host", "").lower()


def too_many(path: str, blocked: Blocked):
    """429 with Retry-After, in JSON for the API."""
    headers = {"Retry-After": str(blocked.retry_after)}
    if path.startswith("/api/"):
        return JSONResponse({"detail": str(blocked)}, status_code=429, headers=headers)
    return PlainTextResponse(str(blocked), status_code=429, headers=headers)


def _unauthenticated(scope, path: str):
    if path.startswith("/api/"):
        return JSONResponse({"detail": "authentication required: send Authorization: Bearer <token>"},
                            status_code=401, headers={"WWW-Authenticate": 'Bearer realm="monitor"'})
    if scope["method"] == "GET" and not path.endswith((".atom", ".rss")) and not path.startswith("/raw/"):
        query = scope.get("query_string", b"").decode("latin-1")
        back = path + ("?" + query if query else "")
        root = scope.get("root_path", "")
        return RedirectResponse(f"{root}/login?next={quote(back, safe='/')}", status_code=303)
    return PlainTextResponse("authentication required", status_code=401,
                             headers={"WWW-Authenticate": 'Basic realm="monitor", charset="UTF-8"'})


def _with_security_headers(send):
    async def wrapped(message):
        if message["type"] == "http.response.start":
            raw = list(message.get("headers", []))
            present = {name.lower() for name, _ in raw}
            extra = list(SECURITY_HEADERS)
            if b"content-security-policy" not in present:
                extra += [(b"content-security-policy", UI_POLICY.encode()), (b"x-frame-options", b"DENY")]
            if b"cache-control" not in present:
                extra.append((b"cache-control", b"no-cache, private"))
            message = {**message, "headers": raw + [h for h in extra if h[0] not in present]}
        await send(message)

    return wrapped
