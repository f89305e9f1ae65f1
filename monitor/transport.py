"""httpx's wire: aiohttp (with `httpx-aiohttp`'s response stream and error mapping), with the
address policy enforced at connect time.

httpx stays the API the fetcher is written against; this transport only moves bytes. aiohttp's
C parser costs several times less CPU per request than httpx's own transport, and aiohttp is told
not to decompress: the fetcher decodes bodies itself, within its size caps (monitor/decoding.py).

Each address policy (monitor/addresses.py) gets its own aiohttp session, whose resolver drops the
addresses the policy refuses. A pooled connection is therefore only ever reused by fetches under
the policy it was opened with, and a host name is judged by what it resolves to when connecting
(every hop of a redirect included), not by its spelling.
"""
from __future__ import annotations

import socket
import ssl

import aiohttp
import httpx
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver
from httpx_aiohttp.transport import AiohttpResponseStream, map_aiohttp_exceptions

from .addresses import Policy, literal

POLICY = "monitor.policy"  # the request extension that carries a fetch's Policy
SCHEMES = ("http", "https")


class GuardedResolver(AbstractResolver):
    """The system resolver, keeping only the addresses a policy allows."""

    def __init__(self, policy: Policy):
        self.policy = policy
        self._resolver = ThreadedResolver()

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        found = await self._resolver.resolve(host, port, family)
        allowed = [r for r in found if self.policy.refusal(r["host"]) is None]
        if found and not allowed:
            self.policy.check(found[0]["host"], host)  # raises AddressRefused, worded in one place
        return allowed

    async def close(self) -> None:
        await self._resolver.close()


class GuardedTransport(httpx.AsyncBaseTransport):
    """Sends each request through the aiohttp session of its policy (request.extensions[POLICY],
    public addresses only when absent); refuses other schemes and refused literal addresses
    before anything is sent."""

    def __init__(self, limits: httpx.Limits, verify: ssl.SSLContext | bool = True):
        self._limits = limits
        self._ssl = verify if isinstance(verify, ssl.SSLContext) else httpx.create_ssl_context(verify=verify)
        self._sessions: dict[Policy, aiohttp.ClientSession] = {}

    def _session(self, policy: Policy) -> aiohttp.ClientSession:
        session = self._sessions.get(policy)
        if session is None:
            connector = aiohttp.TCPConnector(
                limit=self._limits.max_connections or 100, ssl=self._ssl, resolver=GuardedResolver(policy),
                keepalive_timeout=self._limits.keepalive_expiry or 5.0, ttl_dns_cache=10)
            session = self._sessions[policy] = aiohttp.ClientSession(
                connector=connector, cookie_jar=aiohttp.DummyCookieJar(), trust_env=False, auto_decompress=False)
        return session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.scheme not in SCHEMES:
            raise httpx.UnsupportedProtocol(f"refused to follow a {url.scheme or 'scheme-less'}: URL "
                                            "(only http and https URLs are followed)", request=request)
        policy = request.extensions.get(POLICY) or Policy()
        address = literal(url.host)
        if address is not None:
            policy.check(address, f"{url.scheme}://{url.netloc.decode('ascii', 'replace')}")
        timeout = request.extensions.get("timeout", {})
        body = await request.aread()  # a redirect's GET has an unread, empty stream: send no body
        with map_aiohttp_exceptions():
            response = await self._session(policy).request(
                request.method, str(url), headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw], data=body or None,
                allow_redirects=False, auto_decompress=False, compress=False,
                timeout=aiohttp.ClientTimeout(sock_connect=timeout.get("connect"), sock_read=timeout.get("read"),
                                              connect=timeout.get("pool")),
                server_hostname=request.extensions.get("sni_hostname")).__aenter__()
        extensions = {"http_version": b"HTTP/1.1", "reason_phrase": (response.reason or "").encode("latin-1", "replace")}
        return httpx.Response(status_code=response.status, headers=response.raw_headers,
                              stream=AiohttpResponseStream(response), request=request, extensions=extensions)

    async def aclose(self) -> None:
        for session in self._sessions.values():
            await session.close()
        self._sessions.clear()
