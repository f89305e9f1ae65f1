"""Fetch pages over HTTP: conditional requests, size/redirect/time limits, retries, decoding.

A hostile page (huge, binary, endless redirects, slow drip) ends as a FetchResult with `error`
set; nothing here raises for a bad page.
"""
from __future__ import annotations

import asyncio
import codecs
import random
import re
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx

from .config import MonitorSettings

TEXT_TYPES = ("text/html", "application/xhtml+xml", "text/plain", "text/xml", "application/xml")
ERROR_BODY_LIMIT = 65536  # bytes read from a 304 or an error answer, then dropped
KEPT_HEADERS = ("content-type", "etag", "last-modified", "date", "server", "content-language", "location")
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)
_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))


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

    @property
    def not_modified(self) -> bool:
        return self.status == 304

    @property
    def ok(self) -> bool:
        return self.error is None and self.status is not None and (200 <= self.status < 300 or self.status == 304)


class FetchError(Exception):
    """A failed fetch, worded for the user; `retry` says whether trying again may help."""

    def __init__(self, message: str, retry: bool = False, status: int | None = None):
        super().__init__(message)
        self.retry = retry
        self.status = status


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
    """One shared httpx client with global and per-host concurrency limits."""

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
        self._hosts: dict[str, asyncio.Semaphore] = {}

    async def __aenter__(self) -> "Fetcher":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    def _host_limit(self, url: str) -> asyncio.Semaphore:
        host = urlsplit(url).netloc.lower()
        if host not in self._hosts:
            self._hosts[host] = asyncio.Semaphore(self.settings.per_host)
        return self._hosts[host]

    async def fetch(self, url: str, etag: str | None = None, last_modified: str | None = None,
                    headers: dict[str, str] | None = None) -> FetchResult:
        """GET url, retrying connect errors and 5xx with exponential backoff and jitter."""
        request_headers = dict(headers or {})
        if etag:
            request_headers["If-None-Match"] = etag
        if last_modified:
            request_headers["If-Modified-Since"] = last_modified
        started = time.perf_counter()
        result = FetchResult(url=url)
        for attempt in range(self.settings.retries + 1):
            result.attempts = attempt + 1
            try:
                async with self._host_limit(url):
                    await self._get(url, request_headers, result)
                break
            except FetchError as exc:
                result.error = str(exc)
                result.status = exc.status
                if not exc.retry or attempt == self.settings.retries:
                    break
            delay = self.settings.retry_backoff * (2 ** attempt)
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))
        result.elapsed_ms = int((time.perf_counter() - started) * 1000)
        return result

    async def _get(self, url: str, headers: dict[str, str], result: FetchResult) -> None:
        result.error = None
        result.status = None
        try:
            async with asyncio.timeout(self.settings.timeout):
                async with self._client.stream("GET", url, headers=headers) as response:
                    result.status = response.status_code
                    result.final_url = str(response.url)
                    result.headers = {k: response.headers[k] for k in KEPT_HEADERS if k in response.headers}
                    if response.status_code >= 500:
                        raise FetchError(f"HTTP {response.status_code} {response.reason_phrase}".strip(), retry=True,
                                         status=response.status_code)
                    if response.status_code == 304 or response.status_code >= 400:
                        # Read the (small) rest so the connection can be reused.
                        await self._read_capped(response, ERROR_BODY_LIMIT, drain=True)
                        return
                    self._check_type(response)
                    result.body = await self._read_capped(response, self.settings.max_bytes)
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
        if _looks_binary(result.body):
            raise FetchError(f"binary content ({result.headers.get('content-type', 'no content-type')}), not a web page")
        result.text, result.encoding = decode(result.body, result.headers.get("content-type"))

    def _check_type(self, response: httpx.Response) -> None:
        content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type and not (content_type in TEXT_TYPES or content_type.endswith("+xml")):
            raise FetchError(f"not a web page: content-type {content_type}")
        length = response.headers.get("content-length")
        if length and length.isdigit() and int(length) > self.settings.max_bytes:
            raise FetchError(f"body too large: {int(length):,} bytes declared, limit {self.settings.max_bytes:,}")

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
