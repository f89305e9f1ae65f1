"""The web UI in a real headless Chromium (Debian's `chromium`, driven by Playwright), served by the
real `monitor serve` over a history built by the real pipeline. A reviewer logs in, clicks from
the dashboard to the ICE removal, sees the passage struck through, compares v1 with v3; and a
hostile page's payloads run nowhere in the UI. Screenshots are kept in tests/artifacts/web/."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import blog
import story
from conftest import ROOT, free_port, wait_for

NAME = story.NAME
PASSWORD = "correct horse battery"
ARTIFACTS = Path(__file__).parent / "artifacts" / "web"
CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
# What Chromium itself reports when the UI's protections work: a script the sandbox kept from
# running, a resource the Content-Security-Policy refused. Anything else on the console is an error.
PROTECTION_NOTICES = re.compile(r"^(Blocked |Refused to )|violates the following Content Security Policy directive")


def protection_notice(text: str) -> bool:
    return bool(PROTECTION_NOTICES.search(text))


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: install Debian's `chromium` (tests/run.sh does), "
                    "or set CHROMIUM to its path")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Watched:
    """A browser page whose dialogs, console errors and script errors are recorded."""

    def __init__(self, context):
        self.page = context.new_page()
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        self.page.on("dialog", self._dialog)
        self.notices: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and (
            self.notices if protection_notice(m.text) else self.errors).append(m.text))
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))

    def _dialog(self, dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()


@pytest.fixture
def ui_process(workspace):
    """`monitor serve` on a free loopback port, as a real process; yields its base URL."""
    processes = []

    def start() -> str:
        port = free_port()
        log = open(workspace.path / "serve.log", "w")
        process = subprocess.Popen([sys.executable, "-m", "monitor", "serve", "--config", str(workspace.config),
                                    "--port", str(port)], stdout=log, stderr=subprocess.STDOUT,
                                   env=dict(os.environ, PYTHONPATH=str(ROOT)))
        processes.append((process, log))
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: _answers(url + "/static/style.css"), timeout=20)
        return url

    yield start
    for process, log in processes:
        process.terminate()
        process.wait(timeout=20)
        log.close()


def off_loop(function, *args, **kwargs):
    """Call `function` in another thread: Playwright's sync API keeps an event loop running in
    this one, and the CLI runs its own with asyncio.run()."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(function, *args, **kwargs).result()


def _answers(url: str) -> bool:
    import httpx

    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def shot(page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000, f"{path} looks empty"
    return path


def test_reviewer_clicks_from_the_dashboard_to_the_ice_removal_and_compares_v1_with_v3(
        server, workspace, ui_process, browser, monkeypatch):
    monkeypatch.setenv("MONITOR_WEB_PASSWORD", PASSWORD)
    told = off_loop(story.tell, server, workspace, monitor_extra='web_password = "${MONITOR_WEB_PASSWORD}"')
    url = ui_process()
    context = browser.new_context(viewport={"width": 1280, "height": 900}, timezone_id="America/New_York",
                                  locale="en-US")
    watched = Watched(context)
    page = watched.page

    # Log in: the form carries its CSRF token; the session cookie is HttpOnly.
    page.goto(url + "/")
    assert page.url.startswith(url + "/login")
    page.fill("input[name=password]", PASSWORD)
    page.click("button:has-text('Log in')")
    page.wait_for_url(url + "/")
    assert all(c["httpOnly"] for c in context.cookies() if c["name"].startswith("monitor_"))

    # The dashboard: both targets, the post's last change at a glance. Times are local, UTC on hover.
    assert page.locator("table.targets tbody tr").count() == 2
    when = page.locator("table.targets time").first
    assert when.get_attribute("title").endswith(" UTC")
    assert when.inner_text().endswith(("EST", "EDT")) and "UTC" not in when.inner_text()
    shot(page, "dashboard")

    page.click(f"table.targets a:text-is('{NAME}')")
    page.wait_for_url(f"{url}/targets/{NAME}")
    assert page.locator("ol.timeline li.entry").count() == 4
    shot(page, "target")

    # Click through to the removal: the ICE passage, struck through.
    removal = told["by_kind"]["removed"]
    page.click(f"a[href='/changes/{removal['id']}']")
    page.wait_for_url(f"{url}/changes/{removal['id']}")
    struck = page.locator(".inline-diff del")
    assert " ".join(struck.all_inner_texts()) == blog.ICE
    assert "line-through" in struck.first.evaluate("e => getComputedStyle(e).textDecorationLine")
    assert page.locator(".inline-diff ins").count() == 0
    assert page.locator("dl.facts .keywords mark").inner_text() == "facial recognition"
    shot(page, "removal-inline")

    page.click("a:text-is('Side by side')")
    page.wait_for_url(f"{url}/changes/{removal['id']}?view=side")
    row = page.locator(".sbs .row.removed")
    assert row.locator(".old").inner_text() == blog.ICE and row.locator(".new").inner_text() == ""
    shot(page, "removal-side-by-side")

    # Compare v1 with v3 from the timeline: the restore brought back exactly the January text.
    page.goto(f"{url}/targets/{NAME}")
    page.check("input[name=from][value='1']")
    page.check("input[name=to][value='3']")
    page.click("button:has-text('Compare selected versions')")
    page.wait_for_url(re.compile(re.escape(f"{url}/targets/{NAME}/compare?") + ".*"))
    assert sorted(page.url.split("?")[1].split("&")) == ["from=1", "to=3"]
    assert "v1 and v3 have the same text" in page.inner_text("main")
    assert page.locator("del, ins").count() == 0
    shot(page, "compare-v1-v3")

    # The capture of v1, framed in a sandbox; the stored text of every version is searchable.
    page.goto(f"{url}/targets/{NAME}/versions/1")
    frame = page.frame_locator("iframe.capture")
    assert frame.locator("article .entry-content").inner_text().count("facial recognition") == 1
    shot(page, "version-1")
    page.fill(".quick-search input", "facial recognition")
    page.press(".quick-search input", "Enter")
    page.wait_for_url(f"{url}/search?q=facial+recognition")
    assert page.locator("ol.hits > li").count() == 1 and page.locator(".snippet mark").count() == 1
    shot(page, "search")

    # Readable on a phone.
    phone = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True,
                                has_touch=True, timezone_id="Europe/Berlin", locale="en-GB",
                                storage_state=context.storage_state())
    phone_page = Watched(phone)
    for path, name in ((f"/changes/{removal['id']}", "phone-removal"), ("/", "phone-dashboard"),
                       (f"/changes/{removal['id']}?view=side", "phone-side-by-side")):
        phone_page.page.goto(url + path)
        width = phone_page.page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"{path} scrolls sideways on a phone ({width}px)"
        shot(phone_page.page, name)
    assert "CET" in phone_page.page.locator("time").first.inner_text() or \
        "GMT+1" in phone_page.page.locator("time").first.inner_text()

    assert watched.errors == [] and phone_page.errors == []
    assert watched.dialogs == [] and phone_page.dialogs == []
    phone.close()
    context.close()


TITLE = "&lt;script&gt;alert('title')&lt;/script&gt; &lt;img src=x onerror=alert('title-img')&gt;"


def hostile_page(beacon: str, version: int) -> str:
    """Script payloads in the title, the text and the attributes, plus live script, event handlers
    and outside resources pointing at `beacon` (a loopback URL that records requests)."""
    return f"""<!DOCTYPE html><html><head><title>{TITLE}</title>
<script>alert('head-script'); fetch('{beacon}/fetch-head'); window.__xss = 1;</script>
<meta http-equiv="refresh" content="5; url={beacon}/refresh">
<link rel="stylesheet" href="{beacon}/style.css">
</head>
<body onload="alert('body-onload')">
<main>
<h1 title="&quot;&gt;&lt;script&gt;alert('attr')&lt;/script&gt;">Release notes v{version}</h1>
<p>Text payload: &lt;script&gt;alert('text')&lt;/script&gt; and &lt;img src=x onerror=alert('text-img')&gt;.</p>
<p>More: "&gt;&lt;svg onload=alert('svg')&gt; and javascript:alert('js') and {{{{7*7}}}} and ]]&gt; end.</p>
<p><a href="javascript:alert('href')">a javascript: link</a> <img src="{beacon}/img" onerror="alert('onerror')">
<svg onload="alert('svg-live')"><circle r="1"/></svg> <iframe src="{beacon}/frame"></iframe></p>
<p>Edition {version}.</p>
<form action="{beacon}/form" method="post"><input name="q" autofocus onfocus="alert('focus')"></form>
<script>alert('body-script'); fetch('{beacon}/fetch-body'); document.cookie = 'xss=1';</script>
</main></body></html>"""


def test_script_in_a_monitored_page_runs_nowhere_in_the_ui(server, workspace, ui_process, browser):
    beacon = server.url("/beacon")
    server.set("/hostile", hostile_page(beacon, 1))
    workspace.write_config(f"""
[monitor]
retries = 0
calibrate = false

[[targets]]
name = "hostile"
url = '{server.url('/hostile?q="><script>alert(`url`)</script>')}'
keywords = ["<script>alert('keyword')</script>", "Edition"]
tags = ["<img src=x onerror=alert('tag')>"]

[[sites]]
name = "hostile-site"
feeds = ['{server.url('/hostile?feed="><script>alert(`feed`)</script>')}']
""")
    off_loop(workspace.run, "check")
    server.set("/hostile", hostile_page(beacon, 2))
    off_loop(workspace.run, "check")
    history = off_loop(workspace.json, "history", "hostile")
    assert history["versions"][0]["title"].startswith("<script>alert('title')</script>")
    change = history["changes"][0]["id"]
    url = ui_process()
    server.requests.clear()

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    watched = Watched(context)
    page = watched.page
    paths = ["/", "/?tag=%3Cimg", "/changes", "/targets/hostile", f"/changes/{change}", f"/changes/{change}?view=side",
             "/targets/hostile/compare?from=1&to=2", "/targets/hostile/versions/1", "/targets/hostile/versions/2",
             "/targets/hostile/versions/2/source", "/raw/hostile/2", "/search?q=alert", "/alerts", "/sites",
             "/search?q=%3Cscript%3Ealert(%27q%27)%3C/script%3E"]
    for path in paths:
        page.goto(url + path)
        page.wait_for_load_state("load")
        page.wait_for_timeout(200)
        assert page.evaluate("window.__xss") is None, path
        for frame in page.frames:
            assert frame.evaluate("typeof window.__xss") == "undefined", (path, frame.url)
    page.goto(f"{url}/targets/hostile/versions/2")
    page.wait_for_timeout(1000)  # long enough for anything that would fire on load or focus
    shot(page, "hostile-version")

    assert any(n.startswith("Blocked script execution in") for n in watched.notices)  # there, and stopped
    assert watched.dialogs == [], watched.dialogs
    assert watched.errors == [], watched.errors
    assert [path for path, _ in server.requests if path.startswith("/beacon")] == []  # nothing fetched, nothing leaked
    assert {c["name"] for c in context.cookies()} <= {"monitor_csrf"}
    # The text is there to read, as text.
    page.goto(f"{url}/targets/hostile/versions/2")
    assert "Text payload: <script>alert('text')</script>" in page.inner_text("article.text")
    assert page.title().startswith("hostile v2")
    context.close()
