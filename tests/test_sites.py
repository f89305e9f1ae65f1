"""Whole blogs: one [[sites]] entry watches every post its feeds and sitemaps list.

A local blog (tests/sitegen_blog.py) on a real loopback server, the real CLI, a real SQLite file,
a real webhook receiver for alerts."""
from __future__ import annotations

import re
import time
from datetime import datetime, timedelta, timezone

import pytest

from conftest import Page, wait_for
from sitegen_blog import Blog

from monitor import pace

WORDS = ("Agencies across the federal government are moving workloads to the cloud, and we are proud "
         "to support them with the security and compliance they require.")
ICE = ("Azure Government enables them to process data on edge devices or utilize deep learning "
       "capabilities to accelerate facial recognition and identification.")


def paragraphs(topic: str) -> list[str]:
    return [f"{topic}: {WORDS}", f"Second paragraph about {topic}. {WORDS}", f"Closing words on {topic}. {WORDS}"]


def config(blog: Blog, *, feeds=("/feed/",), sitemaps=("/sitemap.xml",), extra: str = "retries = 0",
           channels: str = "", site_extra: str = "") -> str:
    blog.publish()  # serve the blog as the test has set it up
    feeds_toml = ", ".join(f'"{blog.url(f)}"' for f in feeds)
    maps_toml = ", ".join(f'"{blog.url(m)}"' for m in sitemaps)
    return f"""
[monitor]
calibrate = false
timeout = "5s"
alert_wait = "0s"
{extra}
{channels}

[[sites]]
name = "corp"
feeds = [{feeds_toml}]
sitemaps = [{maps_toml}]
{site_extra}
"""


@pytest.fixture
def blog(server):
    b = Blog(server)
    b.add("azure-gov-2018", "Federal agencies continue to advance", paragraphs("Azure") + [ICE], days_ago=400)
    b.add("cloud-at-the-edge", "Cloud at the edge", paragraphs("edge"), days_ago=30)
    b.add("teams-update", "Teams update", paragraphs("Teams"), days_ago=2)
    b.add("quantum-news", "Quantum news", paragraphs("quantum"), days_ago=0.05)
    return b


def targets(workspace, include_inactive=False):
    args = ("targets", "--all") if include_inactive else ("targets",)
    return {t["name"]: t for t in workspace.json(*args)}


def test_one_site_entry_discovers_and_checks_every_post(workspace, blog):
    blog.feed_size = 2  # the feed lists only the newest two; the gzipped child sitemap lists all four
    workspace.write_config(config(blog))
    out = workspace.run("check").output
    assert "corp: 4 posts listed, 4 new" in out
    watched = targets(workspace)
    assert sorted(watched) == ["corp-azure-gov-2018", "corp-cloud-at-the-edge", "corp-quantum-news",
                               "corp-teams-update"]
    assert all(t["site"] == "corp" and t["versions"] == 1 and t["status"] == "ok" for t in watched.values())
    assert watched["corp-azure-gov-2018"]["url"] == blog.url("/blog/azure-gov-2018/")
    # The ICE passage is in the stored text of the January post.
    assert ICE in workspace.json("show", "corp-azure-gov-2018")["blocks"]
    # Posts found at the site's first discovery are the baseline, not news.
    assert not [e for e in workspace.json("history", "corp-quantum-news")["events"] if e["kind"] == "new_post"]

    sites = workspace.json("sites")
    assert sites[0]["posts"] == 4 and sites[0]["status"] == "ok" and sites[0]["last_error"] is None
    by_url = {s["url"]: s for s in sites[0]["sources"]}
    assert by_url[blog.url("/feed/")]["urls"] == 2
    assert by_url[blog.url("/sitemap-posts.xml.gz")]["urls"] == 4
    text = workspace.run("sites").output
    assert "corp: 4 posts" in text and blog.url("/sitemap-posts.xml.gz") in text
    # A post is a target like any other for the reading commands.
    explained = workspace.json("explain", "corp-azure-gov-2018")
    assert any(ICE in b["text"] and b["reason"] is None for b in explained["blocks"]), explained["blocks"]


def test_the_web_ui_shows_a_post_with_its_site_and_keywords(workspace, blog, server):
    import story

    server.set("/broken-feed", Page("<html><body>Oops</body></html>"))
    workspace.write_config(config(blog, feeds=("/feed/", "/broken-feed"), site_extra='keywords = ["facial recognition"]'))
    workspace.run("check")
    ui = story.UI(workspace)
    try:
        # The sites page and API: as `monitor sites`, a broken source shown with its error.
        assert ui.get("/api/sites").json() == workspace.json("sites")
        sites = " ".join(re.sub(r"<[^>]+>", " ", ui.get("/sites").text).split())
        assert "corp" in sites and f"{blog.url('/broken-feed')}: feed {blog.url('/broken-feed')}: not a feed" in sites
        assert f"{blog.url('/sitemap-posts.xml.gz')}: 4 URLs" in sites
        page = ui.get("/targets/corp-azure-gov-2018")
        assert page.status_code == 200
        text = " ".join(re.sub(r"<[^>]+>", " ", page.text).split())
        assert "Site corp, published" in text and "Keywords facial recognition" in text
        assert "not in config" not in text
    finally:
        ui.close()


def test_an_atom_feed_alone_finds_the_posts(workspace, blog):
    blog.feed_size = 10
    workspace.write_config(config(blog, feeds=("/atom.xml",), sitemaps=()))
    workspace.run("check")
    assert len(targets(workspace)) == 4


def test_a_new_post_raises_a_new_post_event_only_on_channels_that_ask(workspace, blog, receiver):
    channels = f"""
[alerts.newsroom]
type = "webhook"
url = "{receiver.url('/newsroom')}"
kinds = ["new_post", "removed", "restored"]

[alerts.default]
type = "webhook"
url = "{receiver.url('/default')}"
"""
    workspace.write_config(config(blog, channels=channels, site_extra='alerts = ["newsroom", "default"]'))
    workspace.run("check")
    assert receiver.delivered("/newsroom") == []  # the existing posts are the baseline

    blog.add("new-policy", "Our new policy", paragraphs("policy"), days_ago=0)
    out = workspace.run("check", "--discover").output
    assert "1 new" in out
    news = receiver.delivered("/newsroom")
    assert [m["kind"] for m in news] == ["new_post"]
    assert news[0]["target"]["url"] == blog.url("/blog/new-policy/")
    assert "Our new policy" in news[0]["summary"]
    assert receiver.delivered("/default") == []  # new_post is off unless a channel lists it

    workspace.run("check")
    assert len(receiver.delivered("/newsroom")) == 1  # once

    # The documented shapes hold for a post: its history, the target list, the sites.
    from monitor import schema

    history = workspace.json("history", "corp-new-policy")
    assert [e["kind"] for e in history["events"]] == ["new_post"]
    schema.History.model_validate(history)
    for document in workspace.json("targets"):
        schema.Target.model_validate(document)
    for document in workspace.json("sites"):
        schema.Site.model_validate(document)


def test_a_post_that_drops_out_of_the_feed_is_still_watched_and_its_deletion_is_gone(workspace, blog, receiver):
    channels = f"""
[alerts.newsroom]
type = "webhook"
url = "{receiver.url('/hook')}"
"""
    blog.in_feed = {"azure-gov-2018", "quantum-news"}
    workspace.write_config(config(blog, sitemaps=(), channels=channels, site_extra='alerts = ["newsroom"]'))
    workspace.run("check")
    assert sorted(targets(workspace)) == ["corp-azure-gov-2018", "corp-quantum-news"]

    # The January post leaves the feed (newer posts push it out) ... and is then quietly edited.
    blog.in_feed = {"quantum-news"}
    blog.posts["azure-gov-2018"].paragraphs = paragraphs("Azure")
    blog.publish()
    workspace.run("check")
    assert "corp-azure-gov-2018" in targets(workspace)
    removed = receiver.delivered("/hook")
    assert [m["kind"] for m in removed] == ["removed"]
    assert "facial recognition" in " ".join(p["removed"] for p in removed[0]["passages"])

    # Then it is deleted: 404 three times in a row -> gone, with its last text kept.
    blog.posts["azure-gov-2018"].status = 404
    blog.publish()
    for _ in range(3):
        workspace.run("check")
    gone = [m for m in receiver.delivered("/hook") if m["kind"] == "gone"]
    assert len(gone) == 1 and "post deleted" in gone[0]["summary"]
    post = targets(workspace)["corp-azure-gov-2018"]
    assert post["status"] == "gone" and post["versions"] == 2
    assert WORDS in workspace.run("show", "corp-azure-gov-2018").output


def test_a_sites_keywords_apply_to_its_posts_in_alerts_pages_and_feeds(workspace, blog, receiver):
    """One answer to "which settings apply": a post's alert names the site's keyword it touched
    (not just a priority flag), and the change page and feeds mark it."""
    import story

    channels = f'''
[alerts.newsroom]
type = "webhook"
url = "{receiver.url('/hook')}"
'''
    blog.in_feed = {"azure-gov-2018"}
    workspace.write_config(config(blog, sitemaps=(), channels=channels,
                                  site_extra='alerts = ["newsroom"]\nkeywords = ["facial recognition"]'))
    workspace.run("check")
    blog.posts["azure-gov-2018"].paragraphs = paragraphs("Azure")
    blog.publish()
    workspace.run("check")
    [alert] = receiver.delivered("/hook")
    assert alert["kind"] == "removed" and alert["priority"] is True
    assert alert["keywords"] == ["facial recognition"]
    ui = story.UI(workspace)
    try:
        changes = ui.get("/api/changes", params={"target": "corp-azure-gov-2018"}).json()
        change_id = [c for c in changes if c["kind"] == "removed"][0]["id"]
        page = ui.get(f"/changes/{change_id}").text
        assert "<mark>facial recognition</mark>" in page
        feed = ui.get("/targets/corp-azure-gov-2018/changes.atom").text
        assert "keywords: facial recognition" in feed
    finally:
        ui.close()


def test_a_post_moved_to_a_new_url_stays_one_target(workspace, blog, receiver):
    channels = f"""
[alerts.newsroom]
type = "webhook"
url = "{receiver.url('/hook')}"
kinds = ["new_post", "removed", "added", "edited", "restored", "gone"]
"""
    blog.feed_size = 10
    workspace.write_config(config(blog, channels=channels, site_extra='alerts = ["newsroom"]'))
    workspace.run("check")
    before = targets(workspace)["corp-teams-update"]

    # The slug changes: the old URL answers 301 to the new one, feed and sitemap list only the new.
    post = blog.posts["teams-update"]
    blog.posts["teams-update-2026"] = type(post)("teams-update-2026", post.title, post.paragraphs, post.published)
    post.moved_to = "teams-update-2026"
    blog.publish()
    workspace.run("check", "--discover")
    workspace.run("check")

    active = [t for t in targets(workspace).values() if "teams" in t["name"]]
    assert len(active) == 1, active
    assert active[0]["url"] == blog.url("/blog/teams-update-2026/")
    assert active[0]["name"] == before["name"] and active[0]["versions"] == 1  # its history continues
    folded = [t for t in targets(workspace, include_inactive=True).values() if "teams" in t["name"]
              and not t["active"]]
    assert [t["url"] for t in folded] == [blog.url("/blog/teams-update-2026/")]
    assert receiver.delivered("/hook") == []  # not a new post, and nothing removed
    assert workspace.json("sites")[0]["duplicates"] == 1


def test_robots_txt_keeps_a_path_unwatched_unless_turned_off(workspace, blog, server):
    blog.add("drafts-secret", "Draft", paragraphs("draft"), days_ago=1)
    server.set("/robots.txt", Page("User-agent: *\nDisallow: /blog/drafts-\n",
                                   headers={"Content-Type": "text/plain"}))
    blog.feed_size = 10
    workspace.write_config(config(blog))
    out = workspace.run("check").output
    assert "1 not watched (robots.txt)" in out
    assert "corp-drafts-secret" not in targets(workspace)
    assert len(targets(workspace)) == 4
    assert blog.requests_for("/blog/drafts-secret/") == 0

    workspace.write_config(config(blog, site_extra="robots = false"))
    workspace.run("sites", "--discover")
    workspace.run("check")
    assert targets(workspace)["corp-drafts-secret"]["versions"] == 1


def test_a_host_answering_429_is_waited_for_then_checked(workspace, blog, server):
    blog.feed_size = 10
    workspace.write_config(config(blog, extra="retries = 2\nper_host = 1"))  # one at a time: none in flight at the 429
    refused = []
    path = "/blog/cloud-at-the-edge/"
    real = server.pages[path]

    def busy(handler):
        if not refused:
            refused.append(time.monotonic())
            handler.send_response(429)
            handler.send_header("Retry-After", "2")
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        handler.send_response(200)
        handler.send_header("Content-Type", "text/html; charset=utf-8")
        handler.send_header("Content-Length", str(len(real.body)))
        handler.end_headers()
        handler.wfile.write(real.body)

    server.set(path, Page(handler=busy))
    stamps = []

    class Stamped(list):
        def append(self, item):
            stamps.append((item[0], time.monotonic()))
            super().append(item)

    server.requests = Stamped(server.requests)
    workspace.run("check")
    watched = targets(workspace)
    assert all(t["versions"] == 1 for t in watched.values()), watched
    after = [(p, t) for p, t in stamps if p.startswith("/blog/") and t > refused[0]]
    assert after and min(t for _, t in after) - refused[0] >= 1.9  # nothing to that host for 2 s


def test_adaptive_pace_new_posts_often_old_ones_rarely_and_a_change_snaps_back(workspace, blog):
    blog.feed_size = 10
    workspace.write_config(config(blog, site_extra='min_interval = "5m"\nmax_interval = "1d"'))
    workspace.run("check")
    t = targets(workspace)
    assert t["corp-quantum-news"]["interval_s"] == 300           # hours old: the minimum
    assert t["corp-azure-gov-2018"]["interval_s"] == 86400       # a year old: the maximum
    assert 300 < t["corp-teams-update"]["interval_s"] < 86400    # two days old: in between
    assert "5m" in workspace.run("targets").output and "1d" in workspace.run("targets").output

    workspace.run("check")
    workspace.run("check")
    grown = targets(workspace)["corp-quantum-news"]["interval_s"]
    assert grown > 300  # unchanged checks in a row lengthen it

    blog.posts["azure-gov-2018"].paragraphs = paragraphs("Azure")  # the old post is edited
    blog.publish()
    workspace.run("check")
    assert targets(workspace)["corp-azure-gov-2018"]["interval_s"] == 300  # snaps back to the minimum


def test_pace_is_bounded_and_grows_with_age_and_quiet():
    now = datetime(2026, 6, 1, tzinfo=timezone.utc)
    lo, hi = 300.0, 86400.0
    assert pace.interval(lo, hi, now, now, 0) == lo
    assert pace.interval(lo, hi, now - timedelta(days=3650), now, 0) == hi
    assert pace.interval(lo, hi, None, now, 0) == hi  # no date known: an old post
    ages = [pace.interval(lo, hi, now - timedelta(days=d), now, 0) for d in (0, 1, 2, 7, 30)]
    assert ages == sorted(ages) and ages[0] < ages[-1]
    quiet = [pace.interval(lo, hi, now, now, n) for n in range(12)]
    assert quiet == sorted(quiet) and quiet[1] > quiet[0] and max(quiet) <= hi


def test_discovery_errors_are_reported_and_cost_nothing_else(workspace, blog, server):
    server.set("/broken-feed", Page("<html><body>Oops, our CMS is down</body></html>"))
    blog.feed_size = 10
    workspace.write_config(config(blog, feeds=("/broken-feed",)))
    result = workspace.run("check")
    assert f"feed {blog.url('/broken-feed')}: not a feed" in result.output
    assert len(targets(workspace)) == 4  # the sitemap still worked
    site = workspace.json("sites")[0]
    assert site["status"] == "error" and "not a feed" in site["last_error"]
    assert "not a feed" in workspace.run("sites").output


@pytest.mark.parametrize("body, message", [
    ('[[sites]]\nname = "x"\n', "sites[0] (site 'x'): a site needs at least one of feeds or sitemaps"),
    ('[[sites]]\nname = "x"\nfeeds = ["ftp://x/feed"]\n', "bad URL"),
    ('[[sites]]\nname = "x"\nfeeds = ["https://x/feed"]\nmin_interval = "2d"\n', "longer than max_interval"),
    ('[[sites]]\nname = "x"\nfeeds = ["https://x/feed"]\nfeed = "y"\n', "key 'feed': unknown key"),
    ('[[sites]]\nname = "x"\nfeeds = ["https://x/f"]\n[[sites]]\nname = "x"\nsitemaps = ["https://x/s"]\n',
     "duplicate site name 'x'"),
    ('[[sites]]\nname = "x"\nfeeds = ["https://x/f"]\nalerts = ["nope"]\n', "unknown channel 'nope'"),
])
def test_site_config_errors_name_the_site_and_key(workspace, body, message):
    workspace.write_config(body)
    result = workspace.run("check", expect=2)
    assert message in result.output, result.output
    assert str(workspace.config) in result.output


def test_the_daemon_discovers_checks_and_alerts_a_whole_site(workspace, blog, receiver, daemon_factory):
    channels = f"""
[alerts.newsroom]
type = "webhook"
url = "{receiver.url('/hook')}"
kinds = ["new_post", "removed", "restored"]
"""
    blog.feed_size = 10
    workspace.write_config(config(blog, channels=channels, site_extra=(
        'alerts = ["newsroom"]\ndiscover_interval = "1s"\nmin_interval = "1s"\nmax_interval = "2s"')))
    daemon = daemon_factory()
    wait_for(lambda: len(targets(workspace)) == 4 and all(t["versions"] for t in targets(workspace).values()), timeout=20)

    blog.add("new-policy", "Our new policy", paragraphs("policy"), days_ago=0)
    wait_for(lambda: [m for m in receiver.delivered("/hook") if m["kind"] == "new_post"], timeout=25)

    blog.posts["azure-gov-2018"].paragraphs = paragraphs("Azure")  # the ICE passage deleted ...
    blog.publish()
    removed = wait_for(lambda: [m for m in receiver.delivered("/hook") if m["kind"] == "removed"], timeout=15)
    assert "facial recognition" in " ".join(p["removed"] for p in removed[0]["passages"])
    blog.posts["azure-gov-2018"].paragraphs = paragraphs("Azure") + [ICE]  # ... and put back
    blog.publish()
    wait_for(lambda: [m for m in receiver.delivered("/hook") if m["kind"] == "restored"], timeout=15)

    assert daemon.stop() == 0
    kinds = [m["kind"] for m in receiver.delivered("/hook")]
    assert kinds.count("new_post") == 1 and kinds.count("removed") == 1 and kinds.count("restored") == 1
    assert "Traceback" not in daemon.output()


BILLION_LAUGHS = ('<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY a "aaaaaaaaaa">'
                  + "".join(f'<!ENTITY {c} "{("&" + p + ";") * 10}">' for p, c in zip("abcdefgh", "bcdefghi"))
                  + ']><rss version="2.0"><channel><item><link>&i;</link></item></channel></rss>')
EXTERNAL = ('<?xml version="1.0"?><!DOCTYPE urlset [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
            '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><url><loc>&x;</loc></url></urlset>')


def _huge(handler):
    handler.send_response(200)
    handler.send_header("Content-Type", "application/xml")
    handler.send_header("Content-Length", str(60_000_000))
    handler.end_headers()
    try:
        handler.wfile.write(b"<urlset>" + b" " * 1_000_000)
    except OSError:
        pass


@pytest.mark.parametrize("kind, page, problem", [
    ("feed", Page(BILLION_LAUGHS, headers={"Content-Type": "application/rss+xml"}), "entit"),
    ("sitemap", Page(EXTERNAL, headers={"Content-Type": "application/xml"}), "entit"),
    ("sitemap", Page(handler=_huge), "too large"),
    ("feed", Page('<?xml version="1.0"?><rss><channel><item><link>http://x/a</lin', headers={
        "Content-Type": "application/rss+xml"}), "feed"),
    ("sitemap", Page(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40, headers={"Content-Type": "image/png"}),
     "not a sitemap"),
])
def test_a_hostile_feed_or_sitemap_is_one_clear_discovery_error(workspace, server, kind, page, problem):
    server.set("/doc", page)
    url = server.url("/doc")
    workspace.write_config(f"""
[monitor]
retries = 0

[[sites]]
name = "hostile"
{kind}s = ["{url}"]
""")
    out = workspace.run("check").output
    assert url in out and problem in out.lower(), out
    assert targets(workspace) == {}
    site = workspace.json("sites")[0]
    assert site["status"] == "error" and url in site["last_error"] and site["posts"] == 0


def test_a_new_post_makes_due_only_the_posts_that_left_the_feed(workspace, blog, server):
    blog.feed_size = 2
    workspace.write_config(config(blog))
    workspace.run("check")
    frozen = {p: server.pages[p] for p in ("/sitemap.xml", "/sitemap-posts.xml.gz")}
    blog.add("new-policy", "Our new policy", paragraphs("policy"), days_ago=0)
    server.pages.update(frozen)  # the sitemaps are not regenerated yet: they answer 304
    out = workspace.run("sites", "--discover").output
    assert "1 new" in out
    now = datetime.now(timezone.utc) + timedelta(seconds=1)
    due = sorted(name for name, t in targets(workspace).items()
                 if t["next_due"] and datetime.fromisoformat(t["next_due"].replace("Z", "+00:00")) <= now)
    # The feed listed quantum-news and teams-update; now new-policy and quantum-news. Only the
    # post that left it is re-checked at once (it may be the new post at its old URL).
    assert due == ["corp-teams-update"], due


def test_check_due_checks_only_what_is_due(workspace, blog, server):
    text = config(blog, site_extra='min_interval = "1h"\nmax_interval = "1d"')
    workspace.write_config(text)
    workspace.run("check")
    assert "nothing is due" in workspace.run("check", "--due").output  # every post has its own later time

    server.set("/about", "<html><body><article><p>About our company and its many products.</p></article></body></html>")
    workspace.write_config(text + f'\n[[targets]]\nname = "about"\nurl = "{server.url("/about")}"\n')
    out = workspace.run("check", "--due").output
    assert "checked 1 target:" in out and "about: v1 first" in out


def test_the_dashboard_of_a_big_site_shows_the_first_rows_and_says_so(workspace, blog):
    import story
    from sitegen_blog import NOW, Post

    for i in range(497):
        blog.posts[f"post-{i:03d}"] = Post(f"post-{i:03d}", f"Post {i}", paragraphs(f"topic {i}"),
                                           NOW - timedelta(days=i + 1))
    workspace.write_config(config(blog))
    workspace.run("sites", "--discover")  # 501 posts, none checked yet
    assert len(targets(workspace)) == 501
    ui = story.UI(workspace)
    try:
        page = ui.get("/").text
        assert "Showing the first 500 of 501 matching targets" in page
        assert page.count('href="/targets/corp-') >= 500
        narrowed = ui.get("/", params={"q": "post-496"}).text
        assert "Showing the first" not in narrowed and "corp-post-496" in narrowed
    finally:
        ui.close()


def test_a_renamed_site_takes_over_its_posts_and_their_history(workspace, blog):
    blog.feed_size = 10
    workspace.write_config(config(blog))
    workspace.run("check")
    workspace.write_config(config(blog).replace('name = "corp"', 'name = "corporate"'))
    out = workspace.run("check").output
    assert "4 watched again (with their history)" in out
    watched = targets(workspace)
    assert sorted(watched) == ["corp-azure-gov-2018", "corp-cloud-at-the-edge", "corp-quantum-news",
                               "corp-teams-update"]
    assert all(t["site"] == "corporate" and t["versions"] == 1 for t in watched.values())
    assert len(targets(workspace, include_inactive=True)) == 4  # no second copy of any post
    assert workspace.json("sites")[0]["posts"] == 4


def test_a_target_named_like_a_discovered_post_is_a_config_error(workspace, blog, server):
    text = config(blog)
    workspace.write_config(text)
    workspace.run("check")
    server.set("/about", "<html><body><article><p>About us.</p></article></body></html>")
    workspace.write_config(text + f'\n[[targets]]\nname = "corp-teams-update"\nurl = "{server.url("/about")}"\n')
    result = workspace.run("check", expect=2)
    assert "config error" in result.output and "'corp-teams-update' is already used by a discovered post" in result.output
    assert str(workspace.config) in result.output
