"""Fetch pages over HTTP: conditional requests, size/redirect/time limits, retries, decoding,
and politeness: per-host limits and delays, a host's request to back off, robots.txt.

A hostile page (huge, binary, endless redirects, slow drip) ends as a FetchResult with `error`
set; nothing here raises for a bad page.
"""
from __future__ import annotations

import asyncio
import codecs
import random
import re
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import httpx

from .config import MonitorSettings
from .robots import ROBOTS_MAX_BYTES, RobotsCache, Rules

TEXT_TYPES = ("text/html", "application/xhtml+xml", "text/plain", "text/xml", "application/xml")
DOCUMENT_MAX_BYTES = 50_000_000  # a feed or sitemap: the sitemap protocol's 50 MB
ERROR_BODY_LIMIT = 65536  # bytes read from a 304 or an error answer, then dropped
KEPT_HEADERS = ("content-type", "etag", "last-modified", "date", "server", "content-language", "location")
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)
_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))

# A host that asks us to back off (429, or 503 with Retry-After) is paused as a whole. A fetch
# waits for a pause up to MAX_WAIT; a longer one ends the fetch at once with `deferred_until`, so
# a check pass is not held up for an hour by one site.
MAX_WAIT = 60.0
BACKOFF_429 = 30.0  # pause after a 429 without Retry-After; doubles with each consecutive 429
MAX_BACKOFF_429 = 3600.0
MAX_PAUSE = 86400.0  # a larger Retry-After (or a date years ahead) is read as one day


@dataclass
class FetchResult:
    url: str
    status: int | None = None
    final_url: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    text: str = ""
    encoding: str | None = None
    elapsed_ms: int = 0
    error: str | None = None
    attempts: int = 1
    deferred_until: datetime | None = None  # (UTC) the host asked us to wait until then; see MAX_WAIT
    blocked: bool = False  # robots.txt forbids the URL; no request was made for it

    @property
    def not_modified(self) -> bool:
        return self.status == 304

    @property
    def ok(self) -> bool:
        return self.error is None and self.status is not None and (200 <= self.status < 300 or self.status == 304)


class FetchError(Exception):
    """A failed fetch, worded for the user; `retry` says whether trying again may help."""

    def __init__(self, message: str, retry: bool = False, status: int | None = None,
                 deferred_until: datetime | None = None, blocked: bool = False):
        super().__init__(message)
        self.retry = retry
        self.status = status
        self.deferred_until = deferred_until
        self.blocked = blocked


def retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """A Retry-After header (seconds or an HTTP-date) -> seconds from now, or None if unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return min(float(value), MAX_PAUSE)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    seconds = (when - (now or datetime.now(timezone.utc))).total_seconds()
    return min(max(0.0, seconds), MAX_PAUSE)


def _iso(when: datetime) -> str:
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class _Host:
    """The Fetcher's state for one host (URL netloc, port included): its gate and its pause."""

    slots: asyncio.Semaphore  # requests in flight to the host (settings.per_host)
    # One request of the host starts at a time: it holds this through the host delay and while it
    # queues for a global slot, so two requests cannot both see the delay as passed.
    starting: asyncio.Lock = field(default_factory=asyncio.Lock)
    robots: asyncio.Lock = field(default_factory=asyncio.Lock)  # one robots.txt fetch at a time
    last_start: float = float("-inf")  # time.monotonic() of the last request's start
    resume: float = 0.0  # time.monotonic() before which nothing may be sent (a 429's pause)
    resume_at: datetime | None = None  # the same moment in UTC, for messages
    why: str = ""  # what asked for the pause, e.g. "HTTP 429, Retry-After"
    strikes: int = 0  # consecutive 429 answers
    crawl_delay: float = 0.0  # from robots.txt, once a fetch with robots=True read it


def _lookup(label: str | None) -> str | None:
    if not label:
        return None
    try:
        return codecs.lookup(label.strip().strip("\"'")).name
    except LookupError:
        return None


def decode(body: bytes, content_type: str | None) -> tuple[str, str]:
    """Bytes -> text the way a browser picks the charset: BOM, Content-Type, <meta>, UTF-8, cp1252.

    An unknown charset label is skipped, as browsers do, rather than failing the page.
    """
    for bom, name in _BOMS:
        if body.startswith(bom):
            return body[len(bom):].decode(name, errors="replace"), name
    candidates = []
    if content_type and "charset=" in content_type.lower():
        candidates.append(_lookup(content_type.lower().split("charset=", 1)[1].split(";")[0]))
    match = _META_CHARSET.search(body[:4096])
    if match:
        candidates.append(_lookup(match.group(1).decode("ascii", "replace")))
    for name in candidates:
        if name:
            return body.decode(name, errors="replace"), name
    try:
        return body.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return body.decode("cp1252", errors="replace"), "cp1252"


def _looks_binary(body: bytes) -> bool:
    head = body[:2048]
    return b"\x00" in head and not head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))


class Fetcher:
    """One shared httpx client with global and per-host limits.

    A request first passes its host's gate (at most `per_host` in flight, `host_delay` or the
    robots.txt Crawl-delay between starts, no start while the host has asked us to wait) and
    only then takes one of the `concurrency` global slots, for as long as it is in flight: a slow
    or paused host never holds slots that other hosts could use."""

    def __init__(self, settings: MonitorSettings, transport: httpx.AsyncBaseTransport | None = None):
        self.settings = settings
        self._client = httpx.AsyncClient(
            follow_redirects=True,
            max_redirects=settings.max_redirects,
            timeout=httpx.Timeout(settings.timeout, connect=min(settings.timeout, 10.0)),
            limits=httpx.Limits(max_connections=settings.concurrency * 2, max_keepalive_connections=settings.concurrency * 2),
            headers={"User-Agent": settings.user_agent, "Accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.5"},
            transport=transport,
        )
        self._slots = asyncio.Semaphore(settings.concurrency)
        self._hosts: dict[str, _Host] = {}
        self._robots = RobotsCache()

    async def __aenter__(self) -> "Fetcher":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    def _host(self, url: str) -> _Host:
        name = urlsplit(url).netloc.lower()
        if name not in self._hosts:
            self._hosts[name] = _Host(asyncio.Semaphore(self.settings.per_host))
        return self._hosts[name]

    async def fetch(self, url: str, etag: str | None = None, last_modified: str | None = None,
                    headers: dict[str, str] | None = None, robots: bool = False,
                    document: bool = False) -> FetchResult:
        """GET url, retrying connect errors and 5xx with exponential backoff and jitter, and a 429
        (or 503 with Retry-After) once the host's pause is over. With `robots`, a URL the host's
        robots.txt forbids is not fetched (`blocked`), and its Crawl-delay spaces the host's requests.
        With `document` (a feed or sitemap), any content type is taken, binary (gzip) included, up to
        DOCUMENT_MAX_BYTES, and left undecoded: the parser judges it."""
        request_headers = dict(headers or {})
        if etag:
            request_headers["If-None-Match"] = etag
        if last_modified:
            request_headers["If-Modified-Since"] = last_modified
        started = time.perf_counter()
        result = FetchResult(url=url)
        host = self._host(url)
        try:
            self._check_pause(host)  # before queueing: a long-paused host answers at once
            if robots:
                await self._obey_robots(url, host)
            for attempt in range(self.settings.retries + 1):
                result.attempts = attempt + 1
                try:
                    async with self._turn(host):
                        await self._get(url, request_headers, result, host, document)
                    break
                except FetchError as exc:
                    if not exc.retry or attempt == self.settings.retries:
                        raise
                    if exc.deferred_until is None:  # a host's pause is waited out in _turn instead
                        delay = self.settings.retry_backoff * (2 ** attempt)
                        await asyncio.sleep(delay * random.uniform(0.5, 1.0))
        except FetchError as exc:
            result.error = str(exc)
            result.status = exc.status
            result.deferred_until = exc.deferred_until
            result.blocked = exc.blocked
        result.elapsed_ms = int((time.perf_counter() - started) * 1000)
        return result

    # ---- the host gate --------------------------------------------------------------------

    def _check_pause(self, host: _Host) -> None:
        if host.resume - time.monotonic() > MAX_WAIT:
            raise FetchError(f"host asked us to wait ({host.why}) until {_iso(host.resume_at)}; not fetched",
                             deferred_until=host.resume_at)

    @asynccontextmanager
    async def _turn(self, host: _Host):
        """Hold one of the host's request slots and, once its delay and any pause are over, a
        global slot, for the time of one request. Raise the deferral if the host is paused for
        longer than MAX_WAIT."""
        async with host.slots:
            async with host.starting:
                while True:
                    while True:  # re-checked after each sleep: a 429 may have paused the host meanwhile
                        self._check_pause(host)
                        now = time.monotonic()
                        ready = max(host.resume, host.last_start + self._delay(host))
                        if ready <= now:
                            break
                        await asyncio.sleep(ready - now)
                    await self._slots.acquire()
                    if time.monotonic() >= host.resume:
                        break
                    self._slots.release()  # paused while we queued: wait again without a global slot
                host.last_start = time.monotonic()
            try:
                yield
            finally:
                self._slots.release()

    def _delay(self, host: _Host) -> float:
        return max(self.settings.host_delay, host.crawl_delay)

    def _note_pause(self, host: _Host, response: httpx.Response) -> FetchError | None:
        """Pause the host if the answer asks us to back off; return the error for that answer."""
        status = response.status_code
        wait = retry_after(response.headers.get("retry-after"))
        if status == 429:
            host.strikes += 1
            why = "HTTP 429, Retry-After" if wait is not None else "HTTP 429"
            if wait is None:
                wait = min(BACKOFF_429 * 2 ** min(host.strikes - 1, 8), MAX_BACKOFF_429)
        elif status == 503 and wait is not None:
            why = "HTTP 503, Retry-After"
        else:
            if status < 400:
                host.strikes = 0
            return None
        now = time.monotonic()
        if now + wait >= host.resume:
            host.resume = now + wait
            host.resume_at = datetime.now(timezone.utc) + timedelta(seconds=wait)
            host.why = why
        return FetchError(f"host asked us to wait ({why}) until {_iso(host.resume_at)}", retry=wait <= MAX_WAIT,
                          status=status, deferred_until=host.resume_at)

    # ---- robots.txt -----------------------------------------------------------------------

    async def _obey_robots(self, url: str, host: _Host) -> None:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc.lower()}"
        async with host.robots:  # concurrent fetches of one host wait for one robots.txt request
            rules = self._robots.get(origin)
            if rules is None:
                rules = await self._fetch_robots(origin, host)
                self._robots.put(origin, rules)
        host.crawl_delay = rules.crawl_delay(self.settings.user_agent)
        if not rules.allows(url, self.settings.user_agent):
            reason = f": {rules.error}" if rules.error else ""
            raise FetchError(f"blocked by robots.txt of {parts.netloc.lower()}{reason}", blocked=True)

    async def _fetch_robots(self, origin: str, host: _Host) -> Rules:
        """GET /robots.txt through the host's gate (so it counts for delays and pauses too)."""
        status, body, problem = None, b"", None
        async with self._turn(host):
            try:
                async with asyncio.timeout(self.settings.timeout):
                    async with self._client.stream("GET", origin + "/robots.txt") as response:
                        self._note_pause(host, response)
                        if 200 <= response.status_code < 300:
                            body = await self._read_head(response, ROBOTS_MAX_BYTES)
                        status = response.status_code  # only once the body is in
            except httpx.TooManyRedirects:
                status = 404  # RFC 9309: past the redirects we follow, robots.txt counts as unavailable
            except TimeoutError:
                problem = f"timed out after {self.settings.timeout:g}s"
            except httpx.HTTPError as exc:
                problem = f"network error: {type(exc).__name__}"
        return Rules.from_answer(status, body, problem)

    @staticmethod
    async def _read_head(response: httpx.Response, limit: int) -> bytes:
        """The first `limit` bytes; the rest is never read."""
        chunks, size = [], 0
        async for chunk in response.aiter_bytes():
            chunks.append(chunk)
            size += len(chunk)
            if size >= limit:
                break
        return b"".join(chunks)[:limit]

    # ---- one request ----------------------------------------------------------------------

    async def allowed(self, url: str) -> bool:
        """Whether the host's robots.txt lets us fetch url (reading it if need be)."""
        try:
            await self._obey_robots(url, self._host(url))
        except FetchError as exc:
            if exc.blocked:
                return False
            raise
        return True

    async def _get(self, url: str, headers: dict[str, str], result: FetchResult, host: _Host,
                   document: bool = False) -> None:
        result.error = None
        result.status = None
        try:
            async with asyncio.timeout(self.settings.timeout):
                async with self._client.stream("GET", url, headers=headers) as response:
                    result.status = response.status_code
                    result.final_url = str(response.url)
                    result.headers = {k: response.headers[k] for k in KEPT_HEADERS if k in response.headers}
                    pause = self._note_pause(host, response)
                    if pause:
                        raise pause
                    if response.status_code >= 500:
                        raise FetchError(f"HTTP {response.status_code} {response.reason_phrase}".strip(), retry=True,
                                         status=response.status_code)
                    if response.status_code == 304 or response.status_code >= 400:
                        # Read the (small) rest so the connection can be reused.
                        await self._read_capped(response, ERROR_BODY_LIMIT, drain=True)
                        return
                    limit = max(self.settings.max_bytes, DOCUMENT_MAX_BYTES) if document else self.settings.max_bytes
                    self._check_type(response, limit, any_type=document)
                    result.body = await self._read_capped(response, limit)
        except FetchError:
            raise
        except TimeoutError:
            raise FetchError(f"timed out after {self.settings.timeout:g}s", retry=True) from None
        except httpx.TooManyRedirects:
            raise FetchError(f"too many redirects (more than {self.settings.max_redirects})") from None
        except httpx.TimeoutException:
            raise FetchError(f"timed out after {self.settings.timeout:g}s", retry=True) from None
        except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
            raise FetchError(f"network error: {type(exc).__name__}: {exc or 'connection failed'}", retry=True) from None
        except httpx.DecodingError as exc:
            raise FetchError(f"bad content encoding: {exc}") from None
        except httpx.HTTPError as exc:
            raise FetchError(f"HTTP error: {type(exc).__name__}: {exc}") from None
        if document:
            return
        if _looks_binary(result.body):
            raise FetchError(f"binary content ({result.headers.get('content-type', 'no content-type')}), not a web page")
        result.text, result.encoding = decode(result.body, result.headers.get("content-type"))

    def _check_type(self, response: httpx.Response, limit: int, any_type: bool = False) -> None:
        content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if not any_type and content_type and not (content_type in TEXT_TYPES or content_type.endswith("+xml")):
            raise FetchError(f"not a web page: content-type {content_type}")
        length = response.headers.get("content-length")
        if length and length.isdigit() and int(length) > limit:
            raise FetchError(f"body too large: {int(length):,} bytes declared, limit {limit:,}")

    async def _read_capped(self, response: httpx.Response, limit: int, drain: bool = False) -> bytes:
        chunks, size = [], 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > limit:
                if drain:
                    return b""
                raise FetchError(f"body too large: more than {limit:,} bytes (limit)")
            chunks.append(chunk)
        return b"".join(chunks)
