"""Hostile feeds and sitemaps: a discovery stays linear in the URLs listed and off the daemon's
event loop, a site holds at most max_posts posts, and a listing cannot make us watch (or fetch)
pages on hosts that are not the site's.

Real loopback servers (tests/conftest.py), the real CLI and daemon, a real SQLite file."""
from __future__ import annotations

import itertools
import re
import subprocess
from datetime import datetime, timezone

import pytest

from conftest import Page, PageServer, wait_for

BUDGET = 60.0   # seconds a discovery of the protocol's largest sitemap may take here (it took 162 s)
XML = {"Content-Type": "application/xml"}
NS = 'xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"'


def urlset(urls) -> bytes:
    locs = "".join(f"<url><loc>{url}</loc></url>" for url in urls)
    return f'<?xml version="1.0"?><urlset {NS}>{locs}</urlset>'.encode()


def sitemap_index(urls) -> bytes:
    locs = "".join(f"<sitemap><loc>{url}</loc></sitemap>" for url in urls)
    return f'<?xml version="1.0"?><sitemapindex {NS}>{locs}</sitemapindex>'.encode()


def rss(urls) -> str:
    items = "".join(f"<item><title>Post {i}</title><link>{url}</link></item>" for i, url in enumerate(urls))
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>Blog</title>{items}</channel></rss>'


def posts(server, prefix: str, count: int) -> list[str]:
    return [server.url(f"/{prefix}/2024/05/{i:06d}-post-{i}/") for i in range(count)]


def serve_index(server, children: int, per_child: int) -> list[str]:
    """/sitemap.xml: an index of `children` sitemaps of `per_child` posts each. Their paths."""
    paths = [f"/sitemap-{i}.xml" for i in range(children)]
    for i, path in enumerate(paths):
        server.set(path, Page(urlset(posts(server, f"c{i}", per_child)), headers=XML))
    server.set("/sitemap.xml", Page(sitemap_index(server.url(path) for path in paths), headers=XML))
    return paths


def quoted(urls) -> str:
    return ", ".join(f'"{url}"' for url in urls)


def site_config(*, feeds=(), sitemaps=(), extra: str = "", head: str = "") -> str:
    return f"""
[monitor]
calibrate = false
timeout = "10s"
retries = 0
{head}

[[sites]]
name = "corp"
feeds = [{quoted(feeds)}]
sitemaps = [{quoted(sitemaps)}]
{extra}
"""


def discover_within_budget(workspace) -> str:
    """`monitor sites --discover` as a real process; fails the test past BUDGET seconds."""
    try:
        result = workspace.subprocess("sites", "--discover", timeout=BUDGET)
    except subprocess.TimeoutExpired:
        pytest.fail(f"discovery did not finish within {BUDGET:g}s")
    assert result.returncode == 0, result.stderr
    return result.stdout


def site(workspace) -> dict:
    return workspace.json("sites")[0]


# ---- 1. linear discovery -------------------------------------------------------------------------

def test_the_largest_sitemap_the_protocol_allows_is_discovered_whole(workspace, server):
    urls = posts(server, "p", 50_000)
    server.set("/sitemap.xml", Page(urlset(urls), headers=XML))
    workspace.write_config(site_config(sitemaps=[server.url("/sitemap.xml")], extra="robots = false"))

    out = discover_within_budget(workspace)

    assert "corp: 50,000 posts listed, 50,000 new" in out
    info = site(workspace)
    assert info["posts"] == 50_000 and info["status"] == "ok"
    names = {t["name"] for t in workspace.json("targets")}
    assert len(names) == 50_000 and "corp-2024-05-000123-post-123" in names


def test_an_index_of_large_sitemaps_is_discovered_whole_then_only_what_changed(workspace, server):
    children = serve_index(server, 3, 20_000)
    workspace.write_config(site_config(sitemaps=[server.url("/sitemap.xml")], extra="robots = false"))

    assert "corp: 60,000 posts listed, 60,000 new" in discover_within_budget(workspace)
    assert {s["url"]: s["urls"] for s in site(workspace)["sources"]} == {
        server.url("/sitemap.xml"): 0, **{server.url(c): 20_000 for c in children}}

    # One child changes (a new post, one gone): only it is read again, and its one new post added.
    server.set(children[0], Page(urlset(posts(server, "c0", 20_000)[1:] + [server.url("/c0/new-post/")]),
                                 headers=XML))
    out = discover_within_budget(workspace)
    assert "corp: 20,000 posts listed, 1 new" in out
    assert site(workspace)["posts"] == 60_001 and site(workspace)["status"] == "ok"


def test_names_stay_unique_and_linear_when_every_url_makes_the_same_name():
    from monitor.discover import Names, canonical, name_base

    # Characters a name cannot hold: every URL's name is "corp-launch" before it is made unique.
    urls = [canonical(f"https://blog.example/launch{chr(0x4E00 + i)}") for i in range(20_000)]
    names = Names({"corp-launch", "CORP-LAUNCH-3"})
    made = [names.unique(name_base("corp", url)) for url in urls]
    assert len({n.lower() for n in made}) == 20_000
    assert made[:3] == ["corp-launch-2", "corp-launch-4", "corp-launch-5"]   # taken names skipped
    assert "corp-launch" not in made


# ---- 2. the daemon keeps its schedule --------------------------------------------------------------

WORDS = "alpha bravo charlie delta echo foxtrot golf hotel india juliett kilo lima".split()


def test_daemon_keeps_checking_other_targets_while_a_huge_sitemap_is_discovered(workspace, server, daemon_factory):
    other = PageServer()
    turn = itertools.count()

    def edited_each_time(handler):  # every check is a new version, so every check is its own stored row
        n = next(turn) % len(WORDS)
        body = f"<html><body><article><p>{' '.join(WORDS[n:] + WORDS[:n])}</p></article></body></html>".encode()
        handler.send_response(200)
        handler.send_header("Content-Type", "text/html")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    try:
        other.set("/healthy", Page(handler=edited_each_time))
        serve_index(server, 2, 50_000)  # 100,000 posts: the most a site holds by default
        workspace.write_config(site_config(sitemaps=[server.url("/sitemap.xml")], head="jitter = 0") + f"""
[[targets]]
name = "healthy"
url = "{other.url('/healthy')}"
interval = "5s"
""")
        daemon = daemon_factory()
        wait_for(lambda: workspace.run("health", expect=None).exit_code == 0)
        started = datetime.now(timezone.utc)
        ages = []

        def discovered() -> bool:
            health = workspace.run("health", expect=None)
            assert health.exit_code == 0, health.output
            ages.append(int(re.search(r"heartbeat (\d+)s ago", health.output).group(1)))
            return site(workspace)["posts"] == 100_000

        wait_for(discovered, timeout=BUDGET, interval=1.0)
        finished = datetime.now(timezone.utc).replace(microsecond=0)  # stored times are to the second
        checks = workspace.json("history", "healthy")["checks"]
        assert daemon.stop() == 0
    finally:
        other.close()

    times = sorted(t for t in (datetime.fromisoformat(c["at"]) for c in checks) if t <= finished)
    gaps = [(b - a).total_seconds() for a, b in zip(times, times[1:])] + [(finished - times[-1]).total_seconds()]
    assert (times[0] - started).total_seconds() < 1.5 * 5, (started, times)
    # On the 5 s grid: no check skipped, none even half an interval late.
    assert max(gaps) < 1.5 * 5, f"the 5s target waited {max(gaps):.1f}s for a check while the sitemaps were read"
    # `monitor health` said ok throughout, and the heartbeat (the event loop writes it every 2 s) was
    # never more than a second overdue.
    assert max(ages) <= 3, f"heartbeat ages seen during the discovery: {ages}"


# ---- 3. a cap on the posts of a site -----------------------------------------------------------------

def test_a_site_holds_at_most_max_posts_and_says_so(workspace, server):
    urls = posts(server, "p", 8)
    server.set("/feed/", Page(rss(urls[-2:]), headers=XML))
    server.set("/sitemap.xml", Page(urlset(urls), headers=XML))
    workspace.write_config(site_config(feeds=[server.url("/feed/")], sitemaps=[server.url("/sitemap.xml")],
                                       extra="max_posts = 5\nrobots = false"))

    out = workspace.run("sites", "--discover").output
    assert "corp: 8 posts listed, 5 new" in out
    assert "error: site corp holds its limit of 5 posts (max_posts): 3 new URLs not added" in out
    info = site(workspace)
    assert info["posts"] == 5 and info["status"] == "error" and "max_posts" in info["last_error"]
    # The feed's posts (the newest) come first.
    assert {t["url"] for t in workspace.json("targets")} == set(urls[-2:] + urls[:3])

    server.set("/sitemap.xml", Page(urlset(urls + [server.url("/p/one-more/")]), headers=XML))
    out = workspace.run("sites", "--discover").output
    assert "0 new" in out and "4 new URLs not added" in out
    assert site(workspace)["posts"] == 5


def test_an_index_is_not_read_past_max_posts(workspace, server):
    serve_index(server, 5, 4)
    workspace.write_config(site_config(sitemaps=[server.url("/sitemap.xml")], extra="max_posts = 6\nrobots = false"))

    out = workspace.run("sites", "--discover").output
    assert "corp: 8 posts listed, 6 new" in out
    assert "3 child sitemaps not read: more than 6 posts listed already (max_posts of site corp)" in out
    asked = {path for path, _ in server.requests}
    assert {"/sitemap-0.xml", "/sitemap-1.xml"} <= asked and not asked & {"/sitemap-2.xml", "/sitemap-3.xml",
                                                                           "/sitemap-4.xml"}
    assert site(workspace)["posts"] == 6


def test_max_posts_must_be_positive(workspace, server):
    workspace.write_config(site_config(sitemaps=[server.url("/sitemap.xml")], extra="max_posts = 0"))
    out = workspace.run("sites", expect=None).output
    assert "max_posts" in out and "greater than or equal to 1" in out


# ---- 4. posts stay on the site's hosts --------------------------------------------------------------

def test_urls_on_other_hosts_are_skipped_counted_and_never_fetched(workspace, server):
    third = PageServer()   # the other host: "localhost", where the site's own documents are on 127.0.0.1
    try:
        offsite = [f"http://localhost:{third.port}/p/{i}/" for i in range(3)]
        third.set("/child.xml", Page(urlset(offsite), headers=XML))
        for i in range(3):
            third.set(f"/p/{i}/", "<html><body><article><p>Not theirs.</p></article></body></html>")
        own = posts(server, "p", 2)
        server.set("/feed/", Page(rss(own + offsite), headers=XML))
        server.set("/sitemap.xml", Page(sitemap_index([server.url("/sitemap-own.xml"),
                                                       f"http://localhost:{third.port}/child.xml"]), headers=XML))
        server.set("/sitemap-own.xml", Page(urlset(own), headers=XML))
        for url in own:
            server.set(url.split(str(server.port), 1)[1], "<html><body><article><p>Ours.</p></article></body></html>")
        workspace.write_config(site_config(feeds=[server.url("/feed/")], sitemaps=[server.url("/sitemap.xml")]))

        out = workspace.run("check").output
        assert "corp: 2 posts listed, 2 new, skipped 4 URLs on other hosts" in out
        assert sorted(t["url"] for t in workspace.json("targets")) == own
        assert all(t["versions"] == 1 for t in workspace.json("targets"))
        assert third.requests == []   # not the posts, not the child sitemap, not even its robots.txt
        assert all(h.get("Host", "").startswith("127.0.0.1") for _, h in server.requests)
    finally:
        third.close()


def test_an_include_pattern_that_names_a_host_lets_its_posts_in(workspace, server):
    mirror = "http://localhost:9/"   # never fetched: discovery alone
    listed = [mirror + "blog/a/", mirror + "blog/b/", mirror + "shop/c/", server.url("/blog/d/")]
    server.set("/feed/", Page(rss(listed), headers=XML))
    feeds = [server.url("/feed/")]

    # A path pattern does not speak for other hosts...
    workspace.write_config(site_config(feeds=feeds, extra='include = ["*/blog/*"]\nrobots = false'))
    assert "corp: 1 post listed, 1 new, skipped 2 URLs on other hosts" in workspace.run("sites", "--discover").output

    # ...a pattern with the host spelled out does.
    workspace.write_config(site_config(feeds=feeds, extra=f'include = ["*/blog/*", "{mirror}blog/*"]\nrobots = false'))
    assert "corp: 3 posts listed, 2 new" in workspace.run("sites", "--discover").output
    assert sorted(t["url"] for t in workspace.json("targets")) == sorted(listed[:2] + listed[3:])


def test_www_and_the_bare_domain_are_one_site():
    from monitor.config import Site
    from monitor.sites import Scope

    scope = Scope(Site(name="corp", feeds=["https://www.Example.com/feed/"]))
    assert scope.post("https://example.com/blog/a/") and scope.post("http://www.example.com/b/")
    assert not scope.post("https://blog.example.com/a/") and not scope.post("https://example.com.evil.test/a/")
