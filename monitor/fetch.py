"""Fetch pages over HTTP: conditional requests, size/redirect/time limits, retries, decoding,
the address policy, and politeness: per-host limits and delays, a host's request to back off,
robots.txt.

A hostile page (huge, compression bomb, binary, endless redirects, slow drip, a redirect to an
internal address) ends as a FetchResult with `error` set; nothing here raises for a bad page.
"""
from __future__ import annotations

import asyncio
import random
import socket
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import aiohttp
import httpx

from .addresses import AddressRefused, Policy, address_class, literal
from .config import MonitorSettings
from .decoding import ACCEPT_ENCODING, BodyDecoder, DecodeError, binary_kind, decode
from .lease import MAX_WAIT
from .robots import ROBOTS_MAX_BYTES, RobotsCache, Rules
from .times import iso
from .transport import POLICY, GuardedTransport

__all__ = ["Fetcher", "FetchResult", "FetchError", "decode", "retry_after"]

TEXT_TYPES = ("text/html", "application/xhtml+xml", "text/plain", "text/xml", "application/xml")
DOCUMENT_MAX_BYTES = 50_000_000  # a feed or sitemap: the sitemap protocol's 50 MB
ERROR_BODY_LIMIT = 65536  # bytes read from a 304 or an error answer, then dropped
KEPT_HEADERS = ("content-type", "etag", "last-modified", "date", "server", "content-language", "location")
ORIGIN_TTL = 60.0  # seconds an origin host's resolved address classes are reused

# A host that asks us to back off (429, or 503 with Retry-After) is paused as a whole. A fetch
# waits for a pause up to MAX_WAIT; a longer one ends the fetch at once with `deferred_until`, so
# a check pass is not held up for an hour by one site.
# MAX_WAIT comes from monitor/lease.py: a claim's lease must outlast the longest wait.
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
    # The browser fetcher's (monitor/browser.py; body and text are then the rendered HTML): a
    # full-page PNG, and the main document's HTTP response as fetched, before rendering.
    screenshot: bytes | None = None
    response: bytes | None = None

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
    name: str = ""  # the netloc, as the fleet's host gate knows it


class Fetcher:
    """One shared httpx client with global and per-host limits.

    A request first passes its host's gate (at most `per_host` in flight, `host_delay` or the
    robots.txt Crawl-delay between starts, no start while the host has asked us to wait) and
    only then takes one of the `concurrency` global slots, for as long as it is in flight: a slow
    or paused host never holds slots that other hosts could use."""

    def __init__(self, settings: MonitorSettings, transport: httpx.AsyncBaseTransport | None = None,
                 hosts=None):
        self.settings = settings
        self.attached: list = []  # what lives and closes with this fetcher (its browser: monitor/browser.py)
        self.hosts = hosts  # monitor/fleet.py's SharedHosts: the same gate for every worker, or None
        self.observe = None  # called with each FetchResult (the daemon's metrics)
        limits = httpx.Limits(max_connections=settings.concurrency * 2, max_keepalive_connections=settings.concurrency * 2)
        self._client = httpx.AsyncClient(
            follow_redirects=True,
            max_redirects=settings.max_redirects,
            timeout=httpx.Timeout(settings.timeout, connect=min(settings.timeout, 10.0)),
            headers={"User-Agent": settings.user_agent, "Accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.5",
                     "Accept-Encoding": ACCEPT_ENCODING},
            transport=transport or GuardedTransport(limits),
        )
        self._slots = asyncio.Semaphore(settings.concurrency)
        self._hosts: dict[str, _Host] = {}
        self._robots = RobotsCache()
        self._networks = settings.address_policy().allow_networks
        self._origins: dict[str, tuple[float, frozenset[str]]] = {}  # host -> its address classes
        self._policies: dict[tuple[str, ...], tuple[float, Policy]] = {}  # origins -> their policy

    async def __aenter__(self) -> "Fetcher":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        for item in self.attached:
            await item.aclose()
        await self._client.aclose()

    def _host(self, url: str) -> _Host:
        name = urlsplit(url).netloc.lower()
        if name not in self._hosts:
            self._hosts[name] = _Host(asyncio.Semaphore(self.settings.per_host), name=name)
        return self._hosts[name]

    async def fetch(self, url: str, etag: str | None = None, last_modified: str | None = None,
                    headers: dict[str, str] | None = None, robots: bool = False,
                    document: bool = False, origins: tuple[str, ...] | None = None,
                    allow_private: bool = False) -> FetchResult:
        """GET url, retrying connect errors and 5xx with exponential backoff and jitter, and a 429
        (or 503 with Retry-After) once the host's pause is over. With `robots`, a URL the host's
        robots.txt forbids is not fetched (`blocked`), and its Crawl-delay spaces the host's requests.
        With `document` (a feed or sitemap), any content type is taken, binary (gzip) included, up to
        DOCUMENT_MAX_BYTES, and left undecoded: the parser judges it.

        `origins` are the configured URLs this one came from (default: url itself, trusted as
        written); every hop may reach public addresses and the address classes the origins resolve
        to, or anything with `allow_private` (see monitor/addresses.py)."""
        request_headers = dict(headers or {})
        if etag:
            request_headers["If-None-Match"] = etag
        if last_modified:
            request_headers["If-Modified-Since"] = last_modified
        started = time.perf_counter()
        result = FetchResult(url=url)
        host = self._host(url)
        try:
            policy = await self.policy(origins or (url,), allow_private)
            self._check_pause(host)  # before queueing: a long-paused host answers at once
            if robots:
                await self._obey_robots(url, host, policy)
            for attempt in range(self.settings.retries + 1):
                result.attempts = attempt + 1
                try:
                    async with self._turn(host):
                        await self._get(url, request_headers, result, host, document, policy)
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
        if self.observe is not None:
            self.observe(result)
        return result

    # ---- the address policy ---------------------------------------------------------------

    async def policy(self, origins: tuple[str, ...], allow_private: bool = False) -> Policy:
        """The addresses a fetch descending from these configured URLs may connect to."""
        if allow_private:
            return Policy.anything()
        key = tuple(origins)
        cached = self._policies.get(key)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        classes: set[str] = set()
        for origin in origins:
            classes |= await self._classes(urlsplit(origin).hostname or "")
        policy = Policy.for_classes(classes, self._networks)
        if len(self._policies) > 10_000:
            self._policies.clear()
        self._policies[key] = (time.monotonic() + ORIGIN_TTL, policy)
        return policy

    async def _classes(self, host: str) -> frozenset[str]:
        """The address classes a configured host resolves to (cached briefly; none if it doesn't)."""
        address = literal(host)
        if address is not None:
            return frozenset({address_class(address)})
        cached = self._origins.get(host)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
            classes = frozenset(address_class(info[4][0].split("%")[0]) for info in infos)
        except (OSError, UnicodeError, ValueError):
            classes = frozenset()
        if len(self._origins) > 10_000:
            self._origins.clear()
        self._origins[host] = (time.monotonic() + ORIGIN_TTL, classes)
        return classes

    # ---- the host gate --------------------------------------------------------------------

    def _check_pause(self, host: _Host) -> None:
        if host.resume - time.monotonic() > MAX_WAIT:
            raise FetchError(f"host asked us to wait ({host.why}) until {iso(host.resume_at)}; not fetched",
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
                    place = None  # one of the host's places for the whole fleet (monitor/fleet.py)
                    if self.hosts is not None:
                        place = await self.hosts.turn(host, self.settings.per_host, self._delay(host))
                        if place is None:
                            continue  # another worker met a pause: wait or defer as for our own
                    await self._slots.acquire()
                    if time.monotonic() >= host.resume:
                        break
                    self._slots.release()  # paused while we queued: wait again without a global slot
                    if place is not None:
                        self.hosts.leave(host, place)
                host.last_start = time.monotonic()
            try:
                yield
            finally:
                self._slots.release()
                if place is not None:
                    self.hosts.leave(host, place)

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
        if self.hosts is not None:  # every other worker waits too
            self.hosts.pause(host, wait, why)
        return FetchError(f"host asked us to wait ({why}) until {iso(host.resume_at)}", retry=wait <= MAX_WAIT,
                          status=status, deferred_until=host.resume_at)

    # ---- robots.txt -----------------------------------------------------------------------

    async def _obey_robots(self, url: str, host: _Host, policy: Policy) -> None:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc.lower()}"
        async with host.robots:  # concurrent fetches of one host wait for one robots.txt request
            rules = self._robots.get(origin)
            if rules is None:
                rules = await self._fetch_robots(origin, host, policy)
                self._robots.put(origin, rules)
        host.crawl_delay = rules.crawl_delay(self.settings.user_agent)
        if not rules.allows(url, self.settings.user_agent):
            reason = f": {rules.error}" if rules.error else ""
            raise FetchError(f"blocked by robots.txt of {parts.netloc.lower()}{reason}", blocked=True)

    async def _fetch_robots(self, origin: str, host: _Host, policy: Policy) -> Rules:
        """GET /robots.txt through the host's gate (so it counts for delays and pauses too)."""
        status, body, problem = None, b"", None
        async with self._turn(host):
            try:
                async with asyncio.timeout(self.settings.timeout):
                    async with self._client.stream("GET", origin + "/robots.txt", extensions={POLICY: policy}) as response:
                        self._note_pause(host, response)
                        if 200 <= response.status_code < 300:
                            body = await self._read(response, ROBOTS_MAX_BYTES, truncate=True)
                        status = response.status_code  # only once the body is in
            except httpx.TooManyRedirects:
                status = 404  # RFC 9309: past the redirects we follow, robots.txt counts as unavailable
            except TimeoutError:
                problem = f"timed out after {self.settings.timeout:g}s"
            except FetchError as exc:
                problem = str(exc)
            except (httpx.HTTPError, aiohttp.ClientError, OSError) as exc:
                problem = _network_error(exc).args[0]
        return Rules.from_answer(status, body, problem)

    # ---- one request ----------------------------------------------------------------------

    async def allowed(self, url: str, origins: tuple[str, ...] | None = None) -> bool:
        """Whether the host's robots.txt lets us fetch url (reading it if need be)."""
        try:
            await self._obey_robots(url, self._host(url), await self.policy(origins or (url,)))
        except FetchError as exc:
            if exc.blocked:
                return False
            raise
        return True

    async def _get(self, url: str, headers: dict[str, str], result: FetchResult, host: _Host,
                   document: bool, policy: Policy) -> None:
        result.error = None
        result.status = None
        try:
            async with asyncio.timeout(self.settings.timeout):
                async with self._client.stream("GET", url, headers=headers, extensions={POLICY: policy}) as response:
                    result.status = response.status_code
                    result.final_url = str(response.url)
                    result.headers = {k: response.headers[k] for k in KEPT_HEADERS if k in response.headers}
                    pause = self._note_pause(host, response)
                    if pause:
                        raise pause
                    if response.status_code >= 500:
                        raise FetchError(f"HTTP {response.status_code} {response.reason_phrase}".strip(), retry=True,
                                         status=response.status_code)
                    if 300 <= response.status_code < 400 and response.status_code != 304:
                        raise FetchError(f"HTTP {response.status_code} redirect without a Location to follow",
                                         status=response.status_code)
                    if response.status_code == 304 or response.status_code >= 400:
                        # Read the (small) rest so the connection can be reused.
                        await self._drain(response)
                        return
                    limit = max(self.settings.max_bytes, DOCUMENT_MAX_BYTES) if document else self.settings.max_bytes
                    self._check_type(response, limit, any_type=document)
                    result.body = await self._read(response, limit)
        except FetchError:
            raise
        except TimeoutError:
            raise FetchError(f"timed out after {self.settings.timeout:g}s", retry=True) from None
        except httpx.TooManyRedirects:
            raise FetchError(f"too many redirects (more than {self.settings.max_redirects})") from None
        except httpx.TimeoutException as exc:
            if _refusal(exc) is None and not isinstance(exc.__cause__, aiohttp.ClientConnectionError):
                raise FetchError(f"timed out after {self.settings.timeout:g}s", retry=True) from None
            raise _network_error(exc) from None
        except httpx.UnsupportedProtocol as exc:
            refused = "" if str(exc).startswith("refused") else "refused to connect: "
            raise FetchError(f"{refused}{exc}") from None
        except httpx.InvalidURL as exc:
            raise FetchError(f"redirect to an unusable URL (only http and https URLs are followed): {exc}") from None
        except (httpx.HTTPError, aiohttp.ClientError, OSError) as exc:
            raise _network_error(exc) from None
        if document:
            return
        kind = binary_kind(result.body, result.headers.get("content-type"))
        if kind:
            raise FetchError(f"{kind} ({result.headers.get('content-type', 'no content-type')}), not a web page")
        result.text, result.encoding = decode(result.body, result.headers.get("content-type"))

    def _check_type(self, response: httpx.Response, limit: int, any_type: bool = False) -> None:
        content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if not any_type and content_type and not (content_type in TEXT_TYPES or content_type.endswith("+xml")):
            raise FetchError(f"not a web page: content-type {content_type}")
        length = response.headers.get("content-length")
        if length and length.isdigit() and int(length) > limit:
            raise FetchError(f"body too large: {int(length):,} bytes declared, limit {limit:,}")

    @staticmethod
    async def _read(response: httpx.Response, limit: int, truncate: bool = False) -> bytes:
        """The body, its Content-Encoding undone, at most `limit` bytes before and after decoding.
        Past the limit: an error, or with `truncate` the first `limit` bytes (the rest unread)."""
        try:
            decoder = BodyDecoder(response.headers.get("content-encoding"), limit)
        except DecodeError as exc:
            raise FetchError(str(exc)) from None
        chunks, raw = [], 0
        try:
            async for chunk in response.aiter_raw():
                raw += len(chunk)
                if raw > limit:
                    raise FetchError(f"body too large: more than {limit:,} bytes (limit)")
                chunks.append(decoder.feed(chunk))
            chunks.append(decoder.finish())
        except DecodeError as exc:
            if truncate and decoder.size:
                return b"".join(chunks)[:limit]
            raise FetchError(str(exc)) from None
        except FetchError:
            if truncate:
                return b"".join(chunks)[:limit]
            raise
        return b"".join(chunks)

    @staticmethod
    async def _drain(response: httpx.Response) -> None:
        """Read the raw rest of a 304 or error answer, up to ERROR_BODY_LIMIT, then stop."""
        size = 0
        async for chunk in response.aiter_raw():
            size += len(chunk)
            if size > ERROR_BODY_LIMIT:
                return


def _refusal(exc: BaseException) -> AddressRefused | None:
    """The address-policy refusal behind an exception, if any."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, AddressRefused):
            return exc
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return None


def _network_error(exc: BaseException) -> FetchError:
    """A transport failure, worded from its root cause; a refused address is not retried."""
    refused = _refusal(exc)
    if refused is not None:
        return FetchError(str(refused))
    root = exc.__cause__ if isinstance(exc, httpx.HTTPError) and exc.__cause__ else exc
    if isinstance(root, aiohttp.ClientConnectorCertificateError):  # retrying will not help
        reason = getattr(root.certificate_error, "verify_message", None) or root.certificate_error
        return FetchError(f"TLS certificate not trusted for {root.host}:{root.port}: {reason}")
    if isinstance(root, aiohttp.ClientResponseError):  # a response aiohttp could not parse
        return FetchError(f"malformed HTTP response: {root.message or type(root).__name__}")
    detail = str(root) or "connection failed"
    return FetchError(f"network error: {type(root).__name__}: {detail}", retry=True)
