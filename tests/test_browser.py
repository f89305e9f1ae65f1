"""The browser fetcher (`fetcher = "browser"`) against real pages on loopback and a real headless
Chromium (Debian's `chromium`, driven by Playwright): a post whose paragraphs a script writes
after load (from data in the page, or fetched from a JSON endpoint) has no text over HTTP and its
whole text rendered; the ICE sequence through it raises exactly the alerts plain HTTP raises, and
every version keeps a screenshot the change page shows. Hostile pages (a renderer crash, a page
that never settles, popups, a `location` loop, a DOM over max_bytes, a `wait_for` never met,
requests to forbidden addresses) each cost one failed check; the browser recovers and the daemon
lives on. Also: a 404 or 429 as over HTTP, a site's posts rendered, `monitor add`'s suggestion."""
from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

import pytest

import blog
from conftest import Page, PageServer, history, wait_for
from test_discover import ConnectionRecorder

CHROMIUM = os.environ.get("CHROMIUM") or "/usr/bin/chromium"
WITHOUT_ICE = [p for p in blog.PARAGRAPHS if p != blog.ICE]
EDITED = [p.replace("we are proud", "we are honored") for p in blog.PARAGRAPHS]
BASE_URL = "https://monitor.example.org"

FILL = ("function fill(paragraphs) { const box = document.querySelector('article .entry-content');"
        " for (const text of paragraphs) { const p = document.createElement('p'); p.textContent = text;"
        " box.appendChild(p); } }")


@pytest.fixture(scope="module", autouse=True)
def chromium():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: install Debian's `chromium` (tests/run.sh does), "
                    "or set CHROMIUM to its path")


def scripted(paragraphs: list[str] | None = None, seed: int = 0, source: str = "inline") -> str:
    """blog.post() with an empty article body that a script fills after the page has loaded: from
    data in the page (`inline`), or from /post.json with fetch() (`json`)."""
    page = blog.post(paragraphs, seed=seed)
    start = page.index('<div class="entry-content">') + len('<div class="entry-content">')
    end = page.index("</div>", start)
    if source == "inline":
        data = json.dumps(blog.PARAGRAPHS if paragraphs is None else paragraphs).replace("<", "\\u003c")
        script = (f"<script>{FILL} const PARAGRAPHS = {data};"
                  " window.addEventListener('load', () => setTimeout(() => fill(PARAGRAPHS), 50));</script>")
    else:
        script = (f"<script>{FILL} window.addEventListener('load', () =>"
                  " fetch('/post.json').then(answer => answer.json()).then(fill));</script>")
    shell = page[:start] + "\n" + page[end:]
    return shell.replace("</body>", script + "\n</body>")


def publish(server, paragraphs: list[str] | None = None, seed: int = 0, status: int = 200) -> None:
    """The post at /static (plain HTML), /inline and /json (written by script), all alike."""
    if status != 200:
        for path in ("/static", "/inline", "/json"):
            server.set(path, "<html><body><h1>Service Unavailable</h1></body></html>", status=status)
        return
    server.set("/static", blog.post(paragraphs, seed=seed))
    server.set("/inline", scripted(paragraphs, seed, "inline"))
    server.set("/json", scripted(paragraphs, seed, "json"))
    server.set("/post.json", json.dumps(blog.PARAGRAPHS if paragraphs is None else paragraphs),
               headers={"Content-Type": "application/json"})


HOOK = """
[alerts.hook]
type = "webhook"
url = "{url}"
"""
TARGET = """
[[targets]]
name = "{name}"
url = "{url}"
selector = "article .entry-content"
fetcher = "{fetcher}"
alerts = ["hook"]
{extra}
"""


def config(server, receiver, targets: list[tuple], monitor_extra: str = "") -> str:
    """targets: (name, path, fetcher) or (name, path, fetcher, more TOML for the target)."""
    text = f'[monitor]\nretries = 0\ncalibrate = false\nbase_url = "{BASE_URL}"\n{monitor_extra}\n'
    text += HOOK.format(url=receiver.url("/hook"))
    for name, path, fetcher, *extra in targets:
        text += TARGET.format(name=name, url=server.url(path), fetcher=fetcher, extra="".join(extra))
    return text


def test_a_page_written_by_script_has_no_text_over_http(server, workspace, receiver):
    publish(server)
    workspace.write_config(config(server, receiver, [("inline-http", "/inline", "http"),
                                                     ("json-http", "/json", "http"), ("json", "/json", "browser")]))
    out = workspace.run("check", "inline-http", "json-http").stdout
    for name in ("inline-http", "json-http"):
        assert f"{name}: ERROR page has no text content" in out
        assert history(workspace, name)["versions"] == []
    # `monitor explain` reads a browser target's page as its checks do: rendered.
    explained = workspace.json("explain", "json")
    assert blog.ICE in [block["text"] for block in explained["blocks"]]


def test_a_sites_posts_are_rendered_when_the_site_says_so(server, workspace):
    publish(server)
    items = "".join(f"<item><title>Post</title><link>{server.url(path)}</link></item>" for path in ("/inline", "/json"))
    server.set("/feed.xml", f'<?xml version="1.0"?><rss version="2.0"><channel><title>News</title>{items}</channel></rss>',
               headers={"Content-Type": "application/rss+xml"})
    workspace.write_config(f'[monitor]\nretries = 0\ncalibrate = false\n\n[[sites]]\nname = "news"\n'
                           f'feeds = ["{server.url("/feed.xml")}"]\nrobots = false\nselector = "article .entry-content"\n'
                           f'fetcher = "browser"\n')
    out = workspace.run("check").stdout
    assert out.count("v1 first: first version: 134 words") == 2, out
    for post in ("news-inline", "news-json"):
        [version] = history(workspace, post)["versions"]
        assert version["screenshot_sha256"] and version["words"] == 134


def comparable(alert: dict) -> dict:
    """A webhook alert without what differs between two targets with the same history: names,
    URLs, ids, times and links."""
    times = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d")
    return {"kind": alert["kind"], "summary": times.sub("<time>", alert["summary"]), "passages": alert["passages"],
            "stats": alert["stats"], "versions": {k: v for k, v in alert["versions"].items() if k != "restored_first_seen"},
            "priority": alert["priority"]}


def test_the_ice_sequence_rendered_alerts_as_plain_http_does_and_keeps_screenshots(server, workspace, receiver):
    targets = [("ice-http", "/static", "http"), ("ice-inline", "/inline", "browser", 'wait_for = "article p"'),
               ("ice-json", "/json", "browser")]
    names = [name for name, *_ in targets]
    publish(server, seed=0)
    workspace.write_config(config(server, receiver, targets))

    out = workspace.run("check").stdout
    assert all(f"{name}: v1 first" in out for name in names), out
    # Same article, other chrome (nonce, share count, timestamps, trending list): no new version.
    publish(server, seed=1)
    assert "checked 3 targets: 3 unchanged" in workspace.run("check").stdout
    publish(server, WITHOUT_ICE, seed=2)
    assert workspace.run("check").stdout.count("v2 removed") == 3
    publish(server, seed=3)
    assert workspace.run("check").stdout.count("v3 restored") == 3
    publish(server, EDITED, seed=4)
    assert workspace.run("check").stdout.count("v4 edited") == 3
    publish(server, status=503)
    assert workspace.run("check").stdout.count("ERROR HTTP 503") == 3

    alerts = {name: [a for a in receiver.delivered("/hook") if a["target"]["name"] == name] for name in names}
    assert [a["kind"] for a in alerts["ice-http"]] == ["removed", "restored", "edited", "error"]
    assert [comparable(a) for a in alerts["ice-inline"]] == [comparable(a) for a in alerts["ice-http"]]
    assert [comparable(a) for a in alerts["ice-json"]] == [comparable(a) for a in alerts["ice-http"]]
    removal = alerts["ice-json"][0]
    assert any("facial recognition and identification" in p["removed"] for p in removal["passages"])
    assert removal["links"]["screenshot"] == f"{BASE_URL}/targets/ice-json/versions/2/screenshot.png"
    assert alerts["ice-http"][0]["links"]["screenshot"] is None

    for name in ("ice-inline", "ice-json"):
        h = history(workspace, name)
        assert [v["version"] for v in h["versions"]] == [4, 3, 2, 1]
        assert all(v["screenshot_sha256"] and v["response_sha256"] for v in h["versions"])
        assert h["versions"][-1]["times_seen"] == 2
    assert all(v["screenshot_sha256"] is None for v in history(workspace, "ice-http")["versions"])
    # The capture is the rendered page; the document as served had no article text at all.
    rendered = workspace.run("show", "ice-json", "1", "--raw").stdout
    assert f"<p>{blog.ICE}</p>" in rendered

    check_pages(workspace, history(workspace, "ice-json"))


def check_pages(workspace, h: dict) -> None:
    """The change page shows the screenshots before and after, side by side; each image is the
    stored one; the version page offers the document as served, before rendering."""
    import story

    ui = story.UI(workspace)
    try:
        removal = next(c for c in h["changes"] if c["kind"] == "removed")
        page = ui.get(f"/changes/{removal['id']}").text
        shots = re.findall(r'<img class="screenshot" src="([^"]+)"', page)
        assert shots == ["/targets/ice-json/versions/1/screenshot.png", "/targets/ice-json/versions/2/screenshot.png"]
        by_seq = {v["version"]: v for v in h["versions"]}
        for seq, url in zip((1, 2), shots):
            image = ui.get(url)
            assert image.status_code == 200 and image.headers["content-type"] == "image/png"
            assert image.content.startswith(b"\x89PNG\r\n\x1a\n")
            assert hashlib.sha256(image.content).hexdigest() == by_seq[seq]["screenshot_sha256"]
        version = ui.get("/targets/ice-json/versions/1").text
        assert '/targets/ice-json/versions/1/screenshot.png' in version
        served = ui.get("/targets/ice-json/versions/1/response")
        assert served.content.startswith(b"HTTP/1.1 200 OK\r\n")
        assert hashlib.sha256(served.content).hexdigest() == by_seq[1]["response_sha256"]
        assert blog.ICE.encode() not in served.content and b"fetch('/post.json')" in served.content
        missing = ui.get("/targets/ice-json/versions/9/screenshot.png")
        assert missing.status_code == 404
    finally:
        ui.close()


# ---- hostile pages: one failed check each; the browser recovers, the daemon lives on ------------------

HOSTILE = {
    # Allocates until its script heap is exhausted: the renderer dies.
    "crash": "<html><body><p>Crash</p><script>const hoard = []; for (;;) hoard.push(new Array(1e6).fill(Math.random()));"
             "</script></body></html>",
    # Never finishes loading: its script spins forever.
    "hang": "<html><body><p>Never settles</p><script>for (;;) {}</script></body></html>",
    "popups": "<html><body><p>Popups</p><script>for (let i = 0; i < 5; i++) window.open('/popup?' + i);"
              " setInterval(() => window.open('/popup'), 20);</script></body></html>",
    "loop": "<html><body><p>Moving on</p><script>setTimeout(() => { location.href = '/loop?' + Date.now(); }, 10);"
            "</script></body></html>",
    # A small page whose script writes 2 MB of text (max_bytes is 1 MB here).
    "huge": "<html><body><main></main><script>document.querySelector('main').textContent = 'x'.repeat(2e6);"
            "</script></body></html>",
    # Waits for an element that never comes.
    "late": "<html><body><p>Still loading</p></body></html>",
}
ERRORS = {"crash": "crashed the browser's renderer", "hang": "did not finish rendering within 6s",
          "popups": "opened more than 3 popups", "loop": "kept navigating: more than 10 location changes",
          "huge": "rendered page too large: 2,000,", "late": "wait_for: nothing matched '#article' within 6s"}
# The good page reports what its requests reached: forbidden addresses, directly and through a
# redirect, are refused; its own site is reached; a WebSocket connects nowhere.
PROBE = """<html><head><title>Probe</title></head><body><main><article><div class="entry-content"></div></article></main>
<script>
async function probe(label, url, mode) {
  try { const answer = await fetch(url, {mode: mode || 'no-cors'}); return label + ': reached ' + answer.status; }
  catch (e) { return label + ': refused'; }
}
window.addEventListener('load', async () => {
  const lines = [await probe('metadata', 'http://169.254.169.254/latest/meta-data/'),
                 await probe('mapped', 'http://[::ffff:a9fe:a9fe]/latest/meta-data/'),
                 await probe('private', 'http://10.0.0.1/admin'),
                 await probe('redirect', '/to-metadata', 'same-origin'),
                 await probe('same-site', '/data.json', 'same-origin')];
  const socket = new WebSocket('ws://127.0.0.1:WS_PORT/');
  socket.onopen = () => document.title = 'socket open';
  const box = document.querySelector('.entry-content');
  for (const line of lines) { const p = document.createElement('p'); p.textContent = line; box.appendChild(p); }
});
</script></body></html>"""
DAEMON = """
[monitor]
jitter = 0
retries = 0
calibrate = false
timeout = "3s"
browser_timeout = "6s"
max_bytes = 1000000
"""


def redirect_to_metadata(handler) -> None:
    handler.send_response(302)
    handler.send_header("Location", "http://169.254.169.254/latest/meta-data/")
    handler.send_header("Content-Length", "0")
    handler.end_headers()


def test_hostile_pages_cost_one_check_each_and_the_browser_recovers(server, workspace, daemon_factory):
    listener = ConnectionRecorder()
    for name, body in HOSTILE.items():
        server.set(f"/{name}", body)
    server.set("/good", PROBE.replace("WS_PORT", str(listener.port)))
    server.set("/data.json", '{"ok": true}', headers={"Content-Type": "application/json"})
    server.set("/to-metadata", Page(handler=redirect_to_metadata))
    text = DAEMON
    for name in HOSTILE:
        # (Checked every few seconds: the daemon spreads the first checks of new targets over their interval.)
        text += f'\n[[targets]]\nname = "{name}"\nurl = "{server.url("/" + name)}"\nfetcher = "browser"\ninterval = "4s"\n'
        text += 'wait_for = "#article"\n' if name == "late" else ""
    text += f'\n[[targets]]\nname = "good"\nurl = "{server.url("/good")}"\nfetcher = "browser"\ninterval = "1s"\n'
    workspace.write_config(text)
    daemon = daemon_factory()
    try:
        def failed() -> dict | None:
            found = {name: history(workspace, name) for name in HOSTILE}
            done = all(h and h["target"]["last_error"] for h in found.values())
            return found if done else None

        bad = wait_for(failed, timeout=60, interval=0.5)
        for name, h in bad.items():
            assert ERRORS[name] in h["target"]["last_error"], (name, h["target"]["last_error"])
            assert h["target"]["status"] == "error" and h["versions"] == []
        last_bad = max(h["target"]["last_check"] for h in bad.values())
        # The good page is rendered again after all of them, by a browser that works.
        good = wait_for(lambda: (h := history(workspace, "good")) and (h["target"]["last_ok"] or "") > last_bad and h,
                        timeout=30, interval=0.5)
        assert daemon.proc.poll() is None, "the daemon lives on"
    finally:
        code = daemon.stop(timeout=30)
        listener.close()
    assert code == 0
    log = daemon.output()
    assert "browser restarted" in log
    assert "169.254.169.254 is a link-local address" in log

    lines = workspace.run("show", "good").stdout
    for line in ("metadata: refused", "mapped: refused", "private: refused", "redirect: refused",
                 "same-site: reached 200"):
        assert line in lines, lines
    assert "/to-metadata" in [path for path, _ in server.requests]
    assert listener.settle() == 0, "a WebSocket reached the network"
    assert good["versions"][0]["screenshot_sha256"]
    # No Chromium is left running once the daemon has stopped.
    ports = set(re.findall(r"dead end 127\.0\.0\.1:(\d+)", log))
    assert ports
    assert not [pid for pid in os.listdir("/proc") if pid.isdigit() and any(
        f"127.0.0.1:{port}".encode() in _cmdline(pid) for port in ports)]


def _cmdline(pid: str) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def test_add_suggests_the_browser_for_a_page_only_a_browser_can_read(server, workspace):
    publish(server)
    out = workspace.run("add", server.url("/json")).stdout
    assert out.splitlines()[0].startswith('added target "127.0.0.1-json"')
    assert re.search(r'note: over HTTP the page shows \d+ words, rendered in a browser \d+ words: '
                     r'add fetcher = "browser" to its entry', out), out
    assert "note:" not in workspace.run("add", server.url("/static")).stdout  # its text is in its HTML
    # The entries are added as asked; the suggestion is for the reader to take.
    assert "fetcher" not in workspace.config.read_text()


def test_a_failed_answer_is_the_same_failed_check_as_over_http(server, workspace):
    """The page's own HTML comes through the HTTP fetcher: a 404, or a 429 asking to wait, is
    handled before any browser is started."""
    busy = PageServer()  # another host: a 429 pauses the whole host it comes from
    server.set("/gone", "<html><body><h1>Not found</h1></body></html>", status=404)
    busy.set("/busy", "<html><body>Slow down</body></html>", status=429,
             headers={"Content-Type": "text/html", "Retry-After": "3600"})
    workspace.write_config("[monitor]\nretries = 0\ncalibrate = false\n" + "".join(
        f'\n[[targets]]\nname = "{name}"\nurl = "{host.url("/" + name)}"\nfetcher = "browser"\n'
        for name, host in (("gone", server), ("busy", busy))))
    try:
        out = workspace.run("check").stdout
    finally:
        busy.close()
    assert "gone: ERROR HTTP 404" in out
    assert "busy: deferred (host asked us to wait (HTTP 429, Retry-After) until " in out
    assert history(workspace, "gone")["checks"][0]["outcome"] == "missing"


def test_browser_settings_are_checked_before_anything_runs(server, workspace):
    workspace.write_config(f'[[targets]]\nname = "plain"\nurl = "{server.url("/static")}"\nwait_for = "article p"\n')
    result = workspace.run("check", expect=2)
    assert "targets[0] (target 'plain')" in result.output
    assert 'wait_for needs fetcher = "browser"' in result.output

    publish(server)
    workspace.write_config(f'[monitor]\nbrowser_executable = "/nonexistent/chromium"\n\n'
                           f'[[targets]]\nname = "rendered"\nurl = "{server.url("/json")}"\nfetcher = "browser"\n')
    out = workspace.run("check").stdout
    assert "rendered: ERROR Chromium not found at /nonexistent/chromium" in out
