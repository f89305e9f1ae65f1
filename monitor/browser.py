"""The browser fetcher (`fetcher = "browser"`): a page rendered by headless Chromium before it is
read, for pages whose text a script writes. Same interface as the HTTP fetcher: fetch() returns a
FetchResult, whose body and text are the rendered HTML (plus a screenshot and the main document's
original HTTP response), and the rest of the pipeline reads it like any page.

How a page is rendered, and what bounds it:

- Its document is fetched by the HTTP fetcher (monitor/fetch.py) exactly as for fetcher = "http":
  size, time and redirect limits, retries, the host's politeness gate and Retry-After pauses,
  robots.txt, the address policy. A 404 or a 503 is therefore a failed check before any browser is
  involved. The answer is handed to Chromium, which renders it at its final URL.
- Every other request the page makes (scripts, styles, images, fetch()/XHR, frames, a script's
  navigation) is intercepted and fetched here through the guarded transport (monitor/transport.py)
  under the page's address policy: addresses are judged when connecting, every redirect hop too,
  and Chromium never resolves a name itself. Media, fonts and known trackers are not fetched.
  Chromium's own network stack reaches only a dead proxy (a loopback port bound by us, on which
  nothing listens), so whatever escapes interception (WebSockets, WebRTC, prefetches) goes nowhere.
- One Chromium per fetcher (per `monitor check` pass, or per daemon), launched at its first page;
  one browser context per page, closed after it; `browser_concurrency` pages at once. Each page
  has `browser_timeout` in all; its rendered DOM may be at most `max_bytes`; its script heap is
  capped; its main frame may navigate at most `max_redirects` times and it may open few popups.
- A renderer that crashes or hangs costs that page's check; the browser is then replaced (the old
  one closes once its other pages are done), and nothing else is disturbed.
"""
from __future__ import annotations

import asyncio
import functools
import http
import http.cookiejar
import logging
import os
import socket
import time
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import urlsplit

import aiohttp
import httpx

from .addresses import Policy
from .config import MonitorSettings
from .decoding import ACCEPT_ENCODING
from .fetch import Fetcher, FetchError, FetchResult, _network_error
from .transport import POLICY, GuardedTransport

log = logging.getLogger("monitor.browser")

DEFAULT_CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ("--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage", "--mute-audio",
                 "--dns-prefetch-disable", "--force-webrtc-ip-handling-policy=disable_non_proxied_udp")
HEAP_MB = 512  # a page's script heap; past it the renderer dies (one failed check), not the machine
VIEWPORT = {"width": 1280, "height": 900}
SHOT_MAX_HEIGHT = 16_000  # pixels of a full-page screenshot; a longer page is cut there
IDLE_CAP = 10.0  # seconds to wait for the network to go quiet (without wait_for) before reading anyway
CLOSE_WAIT = 5.0  # seconds for a context or a browser to close before it is given up on
LAUNCH_WAIT = 30.0  # seconds for Chromium to start
MAX_REQUESTS = 500  # requests one page may make; more are refused
PAGE_BYTES = 4  # all a page loads, together, at most this many times max_bytes
MAX_POPUPS = 3  # popups a page may open (each closed at once); one more fails the check
SKIPPED_TYPES = ("media", "font")
# Third-party trackers: never fetched (a host ending in one of these, unless the page is on it).
TRACKERS = ("google-analytics.com", "googletagmanager.com", "googlesyndication.com", "googleadservices.com",
            "doubleclick.net", "facebook.net", "hotjar.com", "segment.io", "segment.com", "mixpanel.com",
            "scorecardresearch.com", "quantserve.com", "nr-data.net", "clarity.ms", "demdex.net", "omtrdc.net",
            "chartbeat.com", "chartbeat.net", "parsely.com", "newrelic.com", "ads-twitter.com", "adnxs.com",
            "taboola.com", "outbrain.com", "criteo.com", "criteo.net", "amazon-adsystem.com")
REQUEST_DROPPED = ("host", "connection", "content-length", "accept-encoding", "keep-alive", "transfer-encoding",
                   "upgrade", "te", "proxy-connection")
RESPONSE_DROPPED = ("content-encoding", "content-length", "transfer-encoding", "connection", "keep-alive")
RENDERED_TYPE = "text/html; charset=utf-8"  # the capture of a rendered page: its DOM, as UTF-8 HTML
DOM_SIZE = "() => document.documentElement ? document.documentElement.outerHTML.length : 0"
PAGE_HEIGHT = ("() => Math.max(document.documentElement ? document.documentElement.scrollHeight : 0, "
               "document.body ? document.body.scrollHeight : 0)")


Shoot = Callable[[str, str], bool]  # (rendered HTML, its URL) -> whether to take a screenshot


class RenderError(Exception):
    """A page the browser could not render, worded for the user (the check's error)."""


def executable(settings: MonitorSettings) -> str:
    """The Chromium binary: [monitor] browser_executable, else $CHROMIUM, else Debian's."""
    return settings.browser_executable or os.environ.get("CHROMIUM") or DEFAULT_CHROMIUM


def renderer(fetcher: Fetcher) -> "Renderer":
    """The fetcher's browser: one per fetcher (a check pass, or the daemon), launched at its first
    page and closed with the fetcher."""
    for item in fetcher.attached:
        if isinstance(item, Renderer):
            return item
    made = Renderer(fetcher)
    fetcher.attached.append(made)
    return made


def fetch_of(fetcher: Fetcher, watch=None, screenshot: bool | Shoot = False):
    """How a page of this target (a config.Watch; None: any page) is fetched: fetcher.fetch, or with
    fetcher = "browser" its browser's, which waits for its `wait_for` and takes a screenshot as
    `screenshot` says. Both take the same arguments and return a FetchResult."""
    if watch is None or watch.fetcher != "browser":
        return fetcher.fetch
    return functools.partial(renderer(fetcher).fetch, wait_for=watch.wait_for, screenshot=screenshot)


def http_message(result: FetchResult) -> bytes:
    """A fetched document as an HTTP response: status line, the headers kept, a blank line, the
    body (its Content-Encoding undone). What the browser fetcher keeps of the page as served."""
    try:
        reason = http.HTTPStatus(result.status).phrase
    except ValueError:
        reason = ""
    head = f"HTTP/1.1 {result.status} {reason}".rstrip() + "\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in result.headers.items())
    return (head + "\r\n").encode("latin-1", "replace") + result.body


def _tracker(url: str, page_host: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    return any((host == t or host.endswith("." + t)) and not page_host.endswith(t) for t in TRACKERS)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


@dataclass(eq=False)
class _Browser:
    handle: Any  # playwright's Browser
    pages: int = 0  # pages rendering in it now
    retired: bool = False  # replaced (after a crash or a hang): closed once its last page is done


@dataclass
class _Page:
    """One page being rendered: what it has loaded and what it did wrong."""

    document: FetchResult
    policy: Policy
    headers: dict[str, str]  # the target's own request headers: sent to the document's origin only
    bytes_left: int
    deadline: float  # time.monotonic() when the page's time is up
    main: Any = None  # the page itself (playwright's Page); any other page is a popup
    requests: int = 0
    navigations: int = 0
    popups: int = 0
    crashed: bool = False
    problem: str | None = None  # what makes this page's check fail, found while it renders
    refused: list[str] = field(default_factory=list)
    loads: set = field(default_factory=set)  # our fetches in flight for it
    trouble: asyncio.Event = field(default_factory=asyncio.Event)  # set with `problem`

    def left(self) -> float:
        return max(0.0, self.deadline - time.monotonic())

    def fail(self, problem: str) -> None:
        self.problem = self.problem or problem
        self.trouble.set()

    def check(self) -> None:
        if self.problem:
            raise RenderError(self.problem)

    async def unless_failed(self, step) -> None:
        """Await a step of the rendering, cut short when the page fails meanwhile (a page that
        keeps opening popups or navigating would otherwise hold it until its time is up)."""
        work = asyncio.ensure_future(step)
        alarm = asyncio.ensure_future(self.trouble.wait())
        try:
            await asyncio.wait((work, alarm), return_when=asyncio.FIRST_COMPLETED)
        finally:
            alarm.cancel()
            if not work.done():
                work.cancel()
        self.check()
        work.result()

    def same_origin(self, url: str) -> bool:
        mine, other = urlsplit(self.document.final_url or self.document.url), urlsplit(url)
        return (mine.scheme, mine.netloc.lower()) == (other.scheme, other.netloc.lower())


class Renderer:
    """Renders pages in one headless Chromium, replaced when it crashes or hangs. Not thread-safe;
    use it from the fetcher's event loop."""

    def __init__(self, fetcher: Fetcher):
        self.fetcher = fetcher
        self.settings = fetcher.settings
        self.launches = 0
        self._slots = asyncio.Semaphore(self.settings.browser_concurrency)
        self._launching = asyncio.Lock()
        self._playwright = None
        self._current: _Browser | None = None
        self._retired: set[_Browser] = set()
        self._sandbox = os.geteuid() != 0 if hasattr(os, "geteuid") else True  # Chromium refuses it as root
        self._dead_end: socket.socket | None = None  # the proxy Chromium's own requests go to
        self._client = httpx.AsyncClient(
            follow_redirects=True, max_redirects=self.settings.max_redirects,
            timeout=httpx.Timeout(self.settings.timeout, connect=min(self.settings.timeout, 10.0)),
            # No cookie is kept here: the page's own cookies travel in its requests' headers.
            cookies=http.cookiejar.CookieJar(http.cookiejar.DefaultCookiePolicy(allowed_domains=[])),
            headers={"Accept-Encoding": ACCEPT_ENCODING},
            transport=GuardedTransport(httpx.Limits(max_connections=100, max_keepalive_connections=20)))

    async def aclose(self) -> None:
        for browser in [self._current, *self._retired]:
            if browser is not None:
                await self._close(browser)
        self._current = None
        if self._playwright is not None:
            try:
                await asyncio.wait_for(self._playwright.stop(), CLOSE_WAIT)
            except Exception as exc:  # the driver already gone: nothing left to stop
                log.debug("stopping Playwright: %s", exc)
            self._playwright = None
        await self._client.aclose()
        if self._dead_end is not None:
            self._dead_end.close()
            self._dead_end = None

    # ---- one page -------------------------------------------------------------------------------

    async def fetch(self, url: str, etag: str | None = None, last_modified: str | None = None,
                    headers: dict[str, str] | None = None, robots: bool = False,
                    origins: tuple[str, ...] | None = None, allow_private: bool = False,
                    wait_for: str | None = None, screenshot: bool | Shoot = True) -> FetchResult:
        """The page at url, rendered; Fetcher.fetch's arguments, plus `wait_for` (a CSS selector
        to wait for; default: the network going quiet, at most IDLE_CAP) and `screenshot`: whether
        to take one, or a function of the rendered HTML and URL that says so (a screenshot of a
        long page costs more than rendering it: the check takes one only of a new text).

        etag and last_modified are not sent: a page's scripts may show new text while its HTML
        stays the same, so a 304 would hide an edit."""
        started = time.perf_counter()
        document = await self.fetcher.fetch(url, headers=headers, robots=robots, origins=origins,
                                            allow_private=allow_private)
        if not document.ok or document.not_modified:
            return document  # a failed check exactly as with fetcher = "http"
        policy = await self.fetcher.policy(origins or (url,), allow_private)
        async with self._slots:
            try:
                result = await self._render(document, policy, dict(headers or {}), wait_for, screenshot)
            except RenderError as exc:
                result = FetchResult(url=url, status=document.status, final_url=document.final_url,
                                     headers=document.headers, error=str(exc), attempts=document.attempts)
        result.elapsed_ms = int((time.perf_counter() - started) * 1000)
        return result

    async def _render(self, document: FetchResult, policy: Policy, headers: dict[str, str], wait_for: str | None,
                      screenshot: bool | Shoot) -> FetchResult:
        from playwright.async_api import Error as PlaywrightError

        timeout = self.settings.browser_timeout
        page = _Page(document, policy, headers, PAGE_BYTES * self.settings.max_bytes, time.monotonic() + timeout)
        browser = await self._browser()
        browser.pages += 1
        context = None
        try:
            async with asyncio.timeout(timeout):
                context = await browser.handle.new_context(
                    viewport=VIEWPORT, user_agent=self.settings.user_agent, service_workers="block",
                    accept_downloads=False, reduced_motion="reduce")
                context.set_default_timeout(timeout * 1000)
                return await self._read(context, page, wait_for, screenshot)
        except TimeoutError:
            browser.retired = True
            raise RenderError(f"the page did not finish rendering within {timeout:g}s (browser_timeout): its "
                              "scripts may never settle; the browser was restarted") from None
        except PlaywrightError as exc:
            if page.crashed or not browser.handle.is_connected() or "crash" in str(exc).lower():
                browser.retired = True
                raise RenderError("the page crashed the browser's renderer (out of memory, or killed); the "
                                  "browser was restarted") from None
            page.check()  # a failure the page caused explains the browser's error best
            raise RenderError(f"the browser could not render the page: {_first_line(exc)}") from None
        finally:
            for load in page.loads:
                load.cancel()
            if page.refused:
                log.info("%s: refused %d of the page's requests under the address policy, first %s", document.url,
                         len(page.refused), page.refused[0])
            if context is not None:
                try:
                    await asyncio.wait_for(context.close(), CLOSE_WAIT)
                except (TimeoutError, PlaywrightError):
                    browser.retired = True
            browser.pages -= 1
            if browser.retired:
                await self._retire(browser)

    async def _read(self, context, page: _Page, wait_for: str | None, screenshot: bool | Shoot) -> FetchResult:
        """Open the page in the context, let it settle, and take its DOM and screenshot."""
        from playwright.async_api import TimeoutError as PlaywrightTimeout

        context.on("page", lambda opened: self._opened(page, opened))
        await context.route("**/*", lambda route: self._route(page, route))
        await context.route_web_socket("**/*", lambda socket_route: socket_route.close())
        main = page.main = await context.new_page()
        main.on("crash", lambda _: setattr(page, "crashed", True))
        document = page.document
        await page.unless_failed(main.goto(document.final_url or document.url, wait_until="load"))
        if wait_for:
            try:
                await page.unless_failed(main.wait_for_selector(wait_for, state="attached",
                                                                timeout=max(0.1, page.left() - 1.0) * 1000))
            except PlaywrightTimeout:
                raise RenderError(f"wait_for: nothing matched {wait_for!r} within {self.settings.browser_timeout:g}s "
                                  "(browser_timeout)") from None
        else:
            try:
                await page.unless_failed(main.wait_for_load_state("networkidle",
                                                                  timeout=max(0.1, min(IDLE_CAP, page.left())) * 1000))
            except PlaywrightTimeout:
                pass  # a page that keeps polling is read as it is after IDLE_CAP
        size = await main.evaluate(DOM_SIZE)
        limit = self.settings.max_bytes
        if size > limit:
            raise RenderError(f"rendered page too large: {size:,} characters, limit {limit:,} (max_bytes)")
        html = await main.content()
        body = html.encode("utf-8")
        if len(body) > limit:
            raise RenderError(f"rendered page too large: {len(body):,} bytes, limit {limit:,} (max_bytes)")
        final = main.url if main.url.startswith(("http://", "https://")) else document.final_url
        wanted = screenshot(html, final) if callable(screenshot) else screenshot
        shot = await self._screenshot(main) if wanted else None
        page.check()
        headers = {**document.headers, "content-type": RENDERED_TYPE}
        return FetchResult(url=document.url, status=document.status, final_url=final, headers=headers, body=body,
                           text=html, encoding="utf-8", attempts=document.attempts, screenshot=shot,
                           response=http_message(document))

    async def _screenshot(self, main) -> bytes | None:
        """A full-page PNG, cut at SHOT_MAX_HEIGHT pixels; None when it is larger than max_bytes."""
        height = await main.evaluate(PAGE_HEIGHT)
        clip = None
        if height > SHOT_MAX_HEIGHT:
            clip = {"x": 0, "y": 0, "width": VIEWPORT["width"], "height": SHOT_MAX_HEIGHT}
        png = await main.screenshot(full_page=True, clip=clip, type="png", animations="disabled", caret="hide")
        if len(png) > self.settings.max_bytes:
            log.warning("%s: screenshot of %d bytes not kept (max_bytes %d)", main.url, len(png),
                        self.settings.max_bytes)
            return None
        return png

    def _opened(self, page: _Page, opened) -> None:
        """A page opened in the context: the first is ours; any other, a popup, is closed at once."""
        if page.main is None or opened is page.main:
            return
        page.popups += 1
        if page.popups > MAX_POPUPS:
            page.fail(f"the page opened more than {MAX_POPUPS} popups")
        page.loads.add(asyncio.ensure_future(_quietly(opened.close())))

    # ---- every request the page makes ---------------------------------------------------------------

    async def _route(self, page: _Page, route) -> None:
        from playwright.async_api import Error as PlaywrightError

        request = route.request
        try:
            answer = await self._answer(page, request)
            if answer is None:
                await route.abort("blockedbyclient")
            else:
                status, headers, body = answer
                await route.fulfill(status=status, headers=headers, body=body)
        except PlaywrightError:
            pass  # the page or its context closed meanwhile

    async def _answer(self, page: _Page, request) -> tuple[int, dict[str, str], bytes] | None:
        """(status, headers, body) for one of the page's requests, or None to refuse it."""
        from playwright.async_api import Error as PlaywrightError

        url = request.url
        if page.problem or request.resource_type in SKIPPED_TYPES or not url.startswith(("http://", "https://")):
            return None
        try:
            frame = request.frame
            own = frame.page is page.main
            main_frame = own and frame.parent_frame is None
        except PlaywrightError:  # no frame: a new window's first navigation, or a worker's request
            own, main_frame = not request.is_navigation_request(), False
        if not own:
            return None  # a popup's: it is being closed
        if main_frame and request.is_navigation_request():
            page.navigations += 1
            if page.navigations == 1:
                document = page.document
                return document.status, {k: v for k, v in document.headers.items() if k != "location"}, document.body
            if page.navigations > self.settings.max_redirects + 1:
                page.fail(f"the page kept navigating: more than {self.settings.max_redirects} location changes "
                          "(max_redirects)")
                return None
        if _tracker(url, (urlsplit(page.document.final_url or "").hostname or "").lower()):
            return None
        page.requests += 1
        if page.requests > MAX_REQUESTS or page.bytes_left <= 0:
            return None
        load = asyncio.ensure_future(self._load(page, request))
        page.loads.add(load)
        try:
            await asyncio.wait([load])
        finally:
            page.loads.discard(load)
        if load.cancelled():
            return None
        error = load.exception()
        if error is None:
            return load.result()
        if not isinstance(error, FetchError):
            log.warning("%s: the page's request for %s failed: %s: %s", page.document.url, url,
                        type(error).__name__, error)
        elif str(error).startswith("refused"):
            page.refused.append(f"{url}: {error}")
        return None

    async def _load(self, page: _Page, request) -> tuple[int, dict[str, str], bytes]:
        """One of the page's requests, sent through the guarded transport under its address policy."""
        headers = {k: v for k, v in (await request.all_headers()).items()
                   if k not in REQUEST_DROPPED and not k.startswith(":")}
        if page.same_origin(request.url):
            headers.update(page.headers)
        limit = min(self.settings.max_bytes, page.bytes_left)
        try:
            async with asyncio.timeout(min(self.settings.timeout, page.left())):
                async with self._client.stream(request.method, request.url, headers=headers,
                                               content=request.post_data_buffer,
                                               extensions={POLICY: page.policy}) as response:
                    body = await Fetcher._read(response, limit)
                    answer = {}
                    for name, value in response.headers.multi_items():
                        if name.lower() not in RESPONSE_DROPPED:
                            answer[name] = f"{answer[name]}\n{value}" if name in answer else value
        except TimeoutError:
            raise FetchError("timed out") from None
        except httpx.TooManyRedirects:
            raise FetchError(f"too many redirects (more than {self.settings.max_redirects})") from None
        except (httpx.HTTPError, httpx.InvalidURL, aiohttp.ClientError, OSError, ValueError) as exc:
            raise _network_error(exc) from None
        page.bytes_left -= len(body)
        return response.status_code, answer, body

    # ---- the browser ----------------------------------------------------------------------------

    async def _browser(self) -> _Browser:
        """The browser new pages open in: the current one, or a new one if it is gone or retired."""
        async with self._launching:
            current = self._current
            if current is not None and not current.retired and current.handle.is_connected():
                return current
            if current is not None:
                await self._retire(current)
            self._current = await self._launch()
            return self._current

    async def _launch(self) -> _Browser:
        path = executable(self.settings)
        if not os.access(path, os.X_OK):
            raise RenderError(f"Chromium not found at {path} (install Debian's `chromium`, or set [monitor] "
                              "browser_executable or $CHROMIUM to a Chromium binary)")
        try:
            from playwright.async_api import Error as PlaywrightError, async_playwright
        except ImportError:
            raise RenderError("the browser fetcher needs Playwright's Python package: "
                              "pip install 'monitor[browser]'") from None
        if self._dead_end is None:
            self._dead_end = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self._dead_end.bind(("127.0.0.1", 0))  # bound, never listening: every connection is refused
        port = self._dead_end.getsockname()[1]
        args = [*CHROMIUM_ARGS, f"--js-flags=--max-old-space-size={HEAP_MB}",
                f"--proxy-server=http://127.0.0.1:{port}", "--proxy-bypass-list=<-loopback>"]
        try:
            if self._playwright is None:
                self._playwright = await async_playwright().start()
            while True:
                try:
                    handle = await self._playwright.chromium.launch(
                        executable_path=path, args=args, headless=True, chromium_sandbox=self._sandbox,
                        timeout=LAUNCH_WAIT * 1000, handle_sigint=False, handle_sigterm=False, handle_sighup=False)
                    break
                except PlaywrightError as exc:
                    if not self._sandbox:
                        raise
                    log.warning("Chromium would not start with its sandbox (%s); starting it without",
                                _first_line(exc))
                    self._sandbox = False
        except PlaywrightError as exc:
            raise RenderError(f"could not start Chromium ({path}): {_first_line(exc)}") from None
        self.launches += 1
        if self.launches > 1:
            log.warning("browser restarted (start %d of this process)", self.launches)
        log.info("Chromium %s started (%s); its own connections go to the dead end 127.0.0.1:%d", handle.version,
                 path, port)
        return _Browser(handle)

    async def _retire(self, browser: _Browser) -> None:
        """Take a browser out of use; close it now if no page is rendering in it, else when its last
        page is done."""
        browser.retired = True
        if browser is self._current:
            self._current = None
        if browser.pages > 0:
            self._retired.add(browser)
            return
        self._retired.discard(browser)
        await self._close(browser)

    async def _close(self, browser: _Browser) -> None:
        try:
            await asyncio.wait_for(browser.handle.close(), CLOSE_WAIT)
        except Exception as exc:  # hung or gone: stop the driver, which kills what it started
            log.warning("closing the browser failed (%s); stopping Playwright's driver", _first_line(exc))
            playwright, self._playwright = self._playwright, None
            if playwright is not None:
                await _quietly(asyncio.wait_for(playwright.stop(), CLOSE_WAIT))


async def _quietly(awaitable) -> None:
    """Await something whose failure changes nothing (closing what may be closed already)."""
    try:
        await awaitable
    except Exception as exc:
        log.debug("ignored: %s", exc)
