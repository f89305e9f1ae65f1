"""Polite fetching, against real HTTP servers on loopback (two ports are two hosts): per-host and
global limits, a delay between a host's requests, a host's request to back off (429, 503 with
Retry-After), and robots.txt. Timing is asserted as orderings and minimum gaps, never as speed."""
from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler

import pytest

from conftest import LoopbackServer, free_port, http_date
from monitor.config import MonitorSettings
from monitor.fetch import MAX_PAUSE, Fetcher, retry_after
from monitor.robots import MAX_CRAWL_DELAY, RobotsCache, Rules

PAGE = b"<html><head><title>Post</title></head><body><article><h1>Post</h1><p>Some words here.</p></article></body></html>"
SLACK = 0.05  # seconds of clock slack allowed in minimum-gap assertions


@dataclass
class Request:
    path: str
    start: float  # time.monotonic(), the same clock the client uses
    end: float
    user_agent: str


class Meter:
    """Requests in flight, and the most at once; one meter can be shared by several sites."""

    def __init__(self):
        self.lock = threading.Lock()
        self.active = self.peak = 0

    def enter(self):
        with self.lock:
            self.active += 1
            self.peak = max(self.peak, self.active)

    def leave(self):
        with self.lock:
            self.active -= 1


class Site(LoopbackServer):
    """Answers each GET with answer(path, n) -> (status, headers, body), n counting that path's
    requests from 0 (the answer may sleep: it runs in the request's thread). Without an answer:
    the page for any path and a 404 for /robots.txt. Records every request."""

    def __init__(self, answer=None, meter: Meter | None = None):
        self.requests: list[Request] = []
        self.counts: Counter = Counter()
        self.meter = meter or Meter()
        self.answer = answer or (lambda path, n: (404, {}, b"no") if path == "/robots.txt" else (200, {}, PAGE))
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                start = time.monotonic()
                site.meter.enter()
                with site.meter.lock:
                    n = site.counts[self.path]
                    site.counts[self.path] += 1
                try:
                    status, headers, body = site.answer(self.path, n)
                finally:
                    # Recorded before the answer goes out, so the client never sees it unrecorded.
                    site.meter.leave()
                    site.requests.append(Request(self.path, start, time.monotonic(), self.headers.get("User-Agent")))
                self.send_response(status)
                for key, value in {"Content-Type": "text/html; charset=utf-8", **headers}.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._serve(Handler)

    def paths(self) -> list[str]:
        return [r.path for r in self.requests]

    def starts(self) -> list[float]:
        return sorted(r.start for r in self.requests)


@pytest.fixture
def sites():
    made = []

    def make(answer=None, meter=None) -> Site:
        made.append(Site(answer, meter))
        return made[-1]

    yield make
    for site in made:
        site.close()


def settings(**kwargs) -> MonitorSettings:
    return MonitorSettings(**{"timeout": 10, "retries": 0, "retry_backoff": 0.05, **kwargs})


def gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in zip(times, times[1:])]


def robots_txt(text: str):
    def answer(path, n):
        if path == "/robots.txt":
            return 200, {"Content-Type": "text/plain"}, text.encode()
        return 200, {}, PAGE
    return answer


# ---- limits and delays ----------------------------------------------------------------------

async def test_per_host_limit_holds_while_many_fetches_run(sites):
    site = sites(lambda path, n: (time.sleep(0.2), (200, {}, PAGE))[1])
    async with Fetcher(settings(per_host=2, concurrency=16)) as fetcher:
        results = await asyncio.gather(*(fetcher.fetch(site.url(f"/p{i}")) for i in range(10)))
    assert all(r.ok for r in results)
    assert site.meter.peak == 2  # never more than per_host, and the limit is what bounds it


async def test_global_limit_counts_requests_in_flight_over_all_hosts(sites):
    meter = Meter()
    slow = [sites(lambda path, n: (time.sleep(0.2), (200, {}, PAGE))[1], meter) for _ in range(3)]
    async with Fetcher(settings(per_host=4, concurrency=3)) as fetcher:
        results = await asyncio.gather(*(fetcher.fetch(s.url(f"/p{i}")) for s in slow for i in range(4)))
    assert all(r.ok for r in results)
    assert meter.peak == 3


async def test_host_delay_spaces_the_starts_of_a_hosts_requests(sites):
    # One global slot, taken in turn by two hosts: a host's requests queue for it, and the
    # delay must still hold between the starts of two of them.
    site, other = (sites(lambda path, n: (time.sleep(0.1), (200, {}, PAGE))[1]) for _ in range(2))
    async with Fetcher(settings(per_host=2, concurrency=1, host_delay=0.3)) as fetcher:
        results = await asyncio.gather(*(fetcher.fetch(s.url(f"/p{i}")) for i in range(4) for s in (site, other)))
    assert all(r.ok for r in results)
    assert len(site.starts()) == len(other.starts()) == 4
    assert min(gaps(site.starts())) >= 0.3 - SLACK
    assert min(gaps(other.starts())) >= 0.3 - SLACK


async def test_a_slow_host_does_not_hold_up_a_fast_one(sites):
    """Requests queued for a slow host wait at its own gate, not in one of the global slots."""
    release = threading.Event()
    slow = sites(lambda path, n: (release.wait(2), (200, {}, PAGE))[1])
    fast = sites()
    try:
        async with Fetcher(settings(per_host=1, concurrency=2)) as fetcher:
            slow_tasks = [asyncio.create_task(fetcher.fetch(slow.url(f"/s{i}"))) for i in range(6)]
            await asyncio.sleep(0.1)  # the slow host's fetches are all queued first
            fast_results = await asyncio.gather(*(fetcher.fetch(fast.url(f"/f{i}")) for i in range(6)))
            assert all(r.ok for r in fast_results)
            assert not any(t.done() for t in slow_tasks), "a fast fetch waited for the slow host"
            assert len(slow.requests) == 0 and slow.meter.active == 1
            release.set()
            assert all(r.ok for r in await asyncio.gather(*slow_tasks))
    finally:
        release.set()
    assert slow.meter.peak == 1


def test_check_pass_does_not_let_a_slow_host_hold_global_slots(sites, workspace):
    """The same through `monitor check`: its targets are not limited outside the Fetcher."""
    slow = sites(lambda path, n: (time.sleep(1), (200, {}, PAGE))[1])
    fast = sites()
    config = "[monitor]\nretries = 0\ncalibrate = false\nconcurrency = 2\nper_host = 1\n"
    for i in range(3):
        config += f'\n[[targets]]\nname = "slow-{i}"\nurl = "{slow.url(f"/s{i}")}"\n'
    for i in range(3):
        config += f'\n[[targets]]\nname = "fast-{i}"\nurl = "{fast.url(f"/f{i}")}"\n'
    workspace.write_config(config)
    workspace.run("check")
    assert len(slow.requests) == 3 and len(fast.requests) == 3
    first_slow_end = min(r.end for r in slow.requests)
    assert all(r.start < first_slow_end for r in fast.requests)


# ---- a host asks us to back off -------------------------------------------------------------

@pytest.mark.parametrize("status", [429, 503])
async def test_a_short_retry_after_pauses_the_whole_host_then_the_fetch_succeeds(sites, status):
    def answer(path, n):
        if sum(site.counts.values()) == 1:  # the host's very first request (per_host=1: one at a time)
            return status, {"Retry-After": "1"}, b"slow down"
        return 200, {}, PAGE

    site = sites(answer)
    async with Fetcher(settings(per_host=1, retries=2)) as fetcher:
        results = await asyncio.gather(*(fetcher.fetch(site.url(p)) for p in ("/a", "/b", "/c")))
    assert all(r.ok and r.deferred_until is None and r.error is None for r in results)
    assert sorted(r.attempts for r in results) == [1, 1, 2]  # the refused fetch tried again
    refused, *rest = sorted(site.requests, key=lambda r: r.start)
    assert len(rest) == 3  # /a again, /b and /c
    assert all(r.start >= refused.start + 1.0 - SLACK for r in rest), "a request went out during the pause"


@pytest.mark.parametrize("header", ["3600", "date"])
async def test_a_long_retry_after_defers_the_host_without_requests(sites, header):
    value = http_date(time.time() + 3600) if header == "date" else "3600"
    site = sites(lambda path, n: (429, {"Retry-After": value}, b"slow down"))
    other = sites()
    async with Fetcher(settings(retries=2)) as fetcher:
        first = await asyncio.wait_for(fetcher.fetch(site.url("/a")), 30)
        expected = datetime.now(timezone.utc) + timedelta(hours=1)
        assert first.status == 429 and not first.ok and first.attempts == 1  # not retried: too long to wait
        assert "host asked us to wait (HTTP 429, Retry-After) until " in first.error
        assert first.deferred_until.tzinfo is not None
        assert abs((first.deferred_until - expected).total_seconds()) < 60
        assert first.deferred_until.strftime("%Y-%m-%dT%H:%M:%SZ") in first.error

        second = await asyncio.wait_for(fetcher.fetch(site.url("/b")), 30)
        assert second.status is None and second.error.endswith("; not fetched")
        assert second.deferred_until == first.deferred_until
        assert site.paths() == ["/a"]  # no request at all for the second fetch
        assert (await fetcher.fetch(other.url("/x"))).ok  # another host goes on


async def test_429_without_retry_after_pauses_30s_doubling_and_a_success_resets(sites):
    # Three 429s in a row (the first two with Retry-After: 0, so the fetch retries at once).
    script = {0: (429, {"Retry-After": "0"}), 1: (429, {"Retry-After": "0"}), 2: (429, {})}
    busy = sites(lambda path, n: (*script[n], b"slow down") if n in script else (200, {}, PAGE))
    async with Fetcher(settings(retries=2)) as fetcher:
        result = await asyncio.wait_for(fetcher.fetch(busy.url("/a")), 30)
        wait = (result.deferred_until - datetime.now(timezone.utc)).total_seconds()
        assert result.attempts == 3 and result.status == 429 and "(HTTP 429) until" in result.error
        assert 100 < wait <= 120  # 30 s doubled for the second and third consecutive 429
        assert busy.paths() == ["/a"] * 3

    # 429, then a success, then 429 again: the success reset the doubling.
    script2 = {0: (429, {"Retry-After": "0"}), 1: (200, {}), 2: (429, {})}
    calm = sites(lambda path, n: (*script2[n], PAGE))
    async with Fetcher(settings(retries=0)) as fetcher:
        assert (await fetcher.fetch(calm.url("/a"))).status == 429
        assert (await fetcher.fetch(calm.url("/a"))).ok
        again = await fetcher.fetch(calm.url("/a"))
        wait = (again.deferred_until - datetime.now(timezone.utc)).total_seconds()
        assert again.status == 429 and 20 < wait <= 30


async def test_503_without_retry_after_is_retried_with_backoff_as_before(sites):
    site = sites(lambda path, n: (503, {}, b"down") if n == 0 else (200, {}, PAGE))
    async with Fetcher(settings(retries=1)) as fetcher:
        result = await fetcher.fetch(site.url("/a"))
    assert result.ok and result.attempts == 2 and result.deferred_until is None


def test_retry_after_reads_seconds_and_dates():
    now = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)
    assert retry_after("120", now) == 120
    assert retry_after("Thu, 01 Jan 2026 12:05:00 GMT", now) == 300
    assert retry_after("Thu, 01 Jan 2026 11:00:00 GMT", now) == 0  # in the past: no wait
    assert retry_after("soon", now) is None and retry_after(None, now) is None and retry_after("-5", now) is None
    assert retry_after("9" * 40, now) == MAX_PAUSE  # absurd values are capped, not an overflow


# ---- robots.txt -----------------------------------------------------------------------------

async def test_robots_disallow_blocks_without_a_request_and_is_fetched_once(sites):
    site = sites(robots_txt("User-agent: *\nDisallow: /private/\n"))
    config = settings()
    async with Fetcher(config) as fetcher:
        results = await asyncio.gather(*(fetcher.fetch(site.url(p), robots=True)
                                         for p in ("/private/x", "/public/y", "/public/z", "/private/w")))
        private_x, public_y, public_z, private_w = results
        for blocked in (private_x, private_w):
            assert blocked.blocked and blocked.status is None and not blocked.ok
            assert blocked.error == f"blocked by robots.txt of 127.0.0.1:{site.port}"
        assert public_y.ok and public_z.ok and not public_y.blocked
        assert (await fetcher.fetch(site.url("/private/v"), robots=True)).blocked  # cached verdict
        assert site.paths().count("/robots.txt") == 1
        assert not any(p.startswith("/private/") for p in site.paths())
        assert all(r.user_agent == config.user_agent for r in site.requests)

        ignored = await fetcher.fetch(site.url("/private/x"))  # robots=False: fetched like a bookmark
        assert ignored.ok and not ignored.blocked and "/private/x" in site.paths()


async def test_robots_group_for_our_user_agent_applies(sites):
    site = sites(robots_txt("User-agent: monitor\nDisallow: /\n\nUser-agent: *\nDisallow:\n"))
    async with Fetcher(settings()) as fetcher:
        assert (await fetcher.fetch(site.url("/post"), robots=True)).blocked
    async with Fetcher(settings(user_agent="otherbot/1.0 (+https://example.org)")) as fetcher:
        assert (await fetcher.fetch(site.url("/post"), robots=True)).ok


async def test_robots_groups_match_our_product_token_not_words_of_the_comment(sites):
    # Our default user agent's comment has a github.com address; a group for "github" is not ours.
    site = sites(robots_txt("User-agent: github\nDisallow: /\n"))
    async with Fetcher(settings()) as fetcher:
        assert "github" in fetcher.settings.user_agent
        assert (await fetcher.fetch(site.url("/post"), robots=True)).ok


async def test_robots_404_allows_everything(sites):
    site = sites()  # /robots.txt answers 404
    async with Fetcher(settings()) as fetcher:
        results = [await fetcher.fetch(site.url(p), robots=True) for p in ("/a", "/private/b")]
    assert all(r.ok and not r.blocked for r in results)
    assert site.paths() == ["/robots.txt", "/a", "/private/b"]


async def test_robots_5xx_or_unreachable_disallows_for_now(sites):
    site = sites(lambda path, n: (500, {}, b"oops") if path == "/robots.txt" else (200, {}, PAGE))
    async with Fetcher(settings()) as fetcher:
        first = await fetcher.fetch(site.url("/a"), robots=True)
        second = await fetcher.fetch(site.url("/b"), robots=True)
        assert first.blocked and second.blocked and first.status is None
        assert first.error.startswith(f"blocked by robots.txt of 127.0.0.1:{site.port}: ")
        assert "HTTP 500" in first.error and "disallowed" in first.error
        assert site.paths() == ["/robots.txt"]  # neither page, and robots.txt is not asked again at once
        assert (await fetcher.fetch(site.url("/a"))).ok  # robots=False is not affected

        nobody = f"http://127.0.0.1:{free_port()}/a"  # nothing listens there
        unreachable = await fetcher.fetch(nobody, robots=True)
        assert unreachable.blocked and "network error" in unreachable.error


async def test_robots_txt_is_read_up_to_512_kb(sites):
    text = "User-agent: *\nDisallow: /early\n" + "#" * 600_000 + "\nDisallow: /late\n"
    site = sites(robots_txt(text))
    async with Fetcher(settings()) as fetcher:
        assert (await fetcher.fetch(site.url("/early"), robots=True)).blocked
        assert (await fetcher.fetch(site.url("/late"), robots=True)).ok  # past the cap: not read


async def test_robots_crawl_delay_spaces_requests(sites):
    site = sites(robots_txt("User-agent: *\nCrawl-delay: 1\n"))
    async with Fetcher(settings(per_host=2)) as fetcher:
        results = await asyncio.gather(*(fetcher.fetch(site.url(f"/p{i}"), robots=True) for i in range(3)))
    assert all(r.ok for r in results)
    assert len(site.starts()) == 4  # robots.txt and the three pages
    assert min(gaps(site.starts())) >= 1.0 - SLACK


def test_robots_rules_and_cache():
    rules = Rules.from_answer(200, b"User-agent: *\nCrawl-delay: 3600\nDisallow: /x\n", now=0)
    assert rules.crawl_delay("monitor/0.1") == MAX_CRAWL_DELAY
    assert not rules.allows("http://h/x/1", "monitor/0.1") and rules.allows("http://h/y", "monitor/0.1")
    assert rules.expires == 24 * 3600
    assert Rules.from_answer(503, b"", now=0).expires == 600
    assert Rules.from_answer(None, b"", "network error", now=0).allows("http://h/y", "monitor") is False
    assert Rules.from_answer(410, b"", now=0).allows("http://h/x/1", "monitor")

    cache = RobotsCache(size=2)
    for origin in ("http://a", "http://b"):
        cache.put(origin, Rules(expires=100))
    assert cache.get("http://a", now=50) is not None  # a is now the most recently used
    cache.put("http://c", Rules(expires=100))
    assert cache.get("http://b", now=50) is None and len(cache) == 2  # b was the least recently used
    assert cache.get("http://a", now=100) is None  # expired
