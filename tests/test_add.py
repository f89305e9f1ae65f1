"""`monitor add`: a page or a blog goes into targets.toml as one appended entry, the rest of the
file byte for byte as the user wrote it; feeds and sitemaps are found on a real server; anything
wrong leaves the file as it was."""
from __future__ import annotations

import os
import tomllib

from monitor.add import append_entry, feeds_in_html, site_name, sitemaps_in_robots, target_name
from monitor.config import load

# Comments everywhere, odd spacing and quoting, a comment that belongs to the section after the
# last [[targets]], non-ASCII text, and no newline at the end.
ODD = """\
# Pages I watch — keep this tidy, please   (non-ASCII: é, ✓)
[monitor]
retries=0          # tests do not retry
calibrate   =   false
timeout = "5s"     # short

[[targets]]   # the first target
name = 'existing'
url  = "{url}"
tags = [ "a",
    "b" ]        # odd wrapping

  # the alert channel (this comment sits above its own section)
[alerts.hook]
type = "webhook"
url = "https://hooks.example/x"
# the end, no newline after this line"""

PLAIN = """\
[monitor]
retries = 0
calibrate = false
timeout = "5s"
"""

RSS = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Blog</title><link>{base}/</link>
<item><title>Hello</title><link>{base}/2024/hello</link></item></channel></rss>"""
ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Blog</title><id>{base}/</id><updated>2024-01-01T00:00:00Z</updated>
<entry><title>Hello</title><id>{base}/2024/hello</id><link href="{base}/2024/hello"/>
<updated>2024-01-01T00:00:00Z</updated></entry></feed>"""
URLSET = """<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><url><loc>{base}/2024/hello</loc></url></urlset>"""
XML = {"Content-Type": "application/xml"}


def home(head: str = "") -> str:
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>A blog</title>{head}</head>"
            f"<body><h1>A blog</h1><p><a href='/feed.xml'>RSS</a></p></body></html>")


def base(server) -> str:
    return server.url("")


def requested(server) -> list[str]:
    return [path for path, _ in server.requests]


def entries(workspace, table: str) -> list[dict]:
    return tomllib.loads(workspace.config.read_text()).get(table, [])


# ---- pages -------------------------------------------------------------------------------------

def test_add_page_appends_one_entry_and_keeps_every_other_byte(server, workspace):
    workspace.write_config(ODD.format(url=server.url("/existing")))
    workspace.config.chmod(0o640)
    before = workspace.config.read_bytes()

    out = workspace.run("add", server.url("/about/team.html")).stdout
    assert out == f'added target "127.0.0.1-about-team" ({server.url("/about/team.html")}) to {workspace.config}\n'
    after = workspace.config.read_bytes()
    assert after == before + (f'\n\n[[targets]]\nname = "127.0.0.1-about-team"\n'
                              f'url = "{server.url("/about/team.html")}"\n').encode()
    assert workspace.config.stat().st_mode & 0o777 == 0o640
    # the same slug again gets a suffix; the file still loads, with both targets and the alert channel
    workspace.run("add", server.url("/about/team"))
    settings = load(workspace.config)
    assert [t.name for t in settings.targets] == ["existing", "127.0.0.1-about-team", "127.0.0.1-about-team-2"]
    assert list(settings.config.alerts) == ["hook"]
    assert workspace.config.read_bytes().startswith(after)
    assert sorted(os.listdir(workspace.path)) == ["targets.toml"]   # no temp file left behind
    assert requested(server) == ["/about/team.html", "/about/team"]   # adding a page looks at it once


def test_add_page_with_a_name_to_a_missing_then_an_empty_file(workspace):
    out = workspace.run("add", "https://example.org/pricing", "--name", "pricing", "--offline").stdout
    assert "(a new file)" in out
    assert workspace.config.read_text() == '[[targets]]\nname = "pricing"\nurl = "https://example.org/pricing"\n'
    workspace.write_config("")
    workspace.run("add", "https://www.example.org/", "--offline")
    assert workspace.config.read_text() == '[[targets]]\nname = "example.org"\nurl = "https://www.example.org/"\n'


# ---- sites ---------------------------------------------------------------------------------------

def test_add_site_whose_home_page_links_an_rss_and_an_atom_feed(server, workspace):
    b = base(server)
    server.set("/", home(
        '<link rel="stylesheet" href="/style.css">'
        '<link rel="alternate" type="application/rss+xml" title="Feed" href="/feed.xml">'
        f'<link rel="Alternate" type="application/atom+xml; charset=utf-8" href="{b}/atom.xml">'
        '<link rel="alternate" type="application/rss+xml" title="Comments" href="/comments/feed/">'
        '<link rel="alternate" type="application/feed+json" href="/feed.json">'
        '<link rel="alternate" hreflang="fr" href="/fr/">'))
    server.set("/robots.txt", "User-agent: *\nDisallow:\n", headers={"Content-Type": "text/plain"})
    workspace.write_config(PLAIN)

    out = workspace.run("add", "--site", server.url("/")).stdout
    assert out.splitlines()[0] == f'added site "127.0.0.1" with 2 feeds to {workspace.config}'
    assert entries(workspace, "sites") == [{"name": "127.0.0.1", "feeds": [f"{b}/feed.xml", f"{b}/atom.xml"],
                                            "sitemaps": []}]
    assert workspace.config.read_text().startswith(PLAIN + "\n[[sites]]\n")
    assert load(workspace.config).sites[0].feeds == [f"{b}/feed.xml", f"{b}/atom.xml"]
    assert requested(server) == ["/", "/robots.txt"]        # found: nothing probed


def test_add_site_found_only_through_robots_txt(server, workspace):
    b = base(server)
    server.set("/", home())
    server.set("/robots.txt", f"# hello\nUser-agent: *\nDisallow: /admin\nsitemap: {b}/sitemaps/posts.xml  # posts\n",
               headers={"Content-Type": "text/plain"})
    workspace.write_config(PLAIN)

    out = workspace.run("add", "--site", server.url("/"), "--name", "myblog").stdout
    assert out.splitlines()[0] == f'added site "myblog" with 1 sitemap to {workspace.config}'
    assert entries(workspace, "sites") == [{"name": "myblog", "feeds": [], "sitemaps": [f"{b}/sitemaps/posts.xml"]}]
    assert requested(server) == ["/", "/robots.txt"]


def test_add_site_found_only_by_probing_sitemap_xml(server, workspace):
    b = base(server)
    server.set("/", home())
    server.set("/feed", home())                                  # a catch-all page is not a feed
    server.set("/rss.xml", "Not here", headers={"Content-Type": "text/plain"})
    server.set("/sitemap.xml", URLSET.format(base=b), headers=XML)
    workspace.write_config(PLAIN)

    out = workspace.run("add", "--site", server.url("/")).stdout
    assert out.splitlines() == [f'added site "127.0.0.1" with 1 sitemap to {workspace.config}',
                                f"  sitemap  {b}/sitemap.xml"]
    assert entries(workspace, "sites") == [{"name": "127.0.0.1", "feeds": [], "sitemaps": [f"{b}/sitemap.xml"]}]
    assert {"/feed", "/rss.xml", "/atom.xml", "/index.xml", "/feed.xml", "/sitemap.xml",
            "/sitemap_index.xml"} <= set(requested(server))


def test_add_site_with_nothing_to_find_exits_1_and_changes_nothing(server, workspace):
    server.set("/", home())
    server.set("/feed", home())
    workspace.write_config(ODD.format(url=server.url("/existing")))
    before = workspace.config.read_bytes()

    result = workspace.run("add", "--site", server.url("/"), expect=1)
    assert workspace.config.read_bytes() == before
    assert f"found no feed or sitemap for {server.url('/')}" in result.stderr
    assert "robots.txt: HTTP 404" in result.stderr and "/sitemap_index.xml" in result.stderr
    assert result.stdout == ""


# ---- refusals: exit 2, the file unchanged ---------------------------------------------------------

def test_a_name_already_taken_by_a_target_or_a_site_is_refused(server, workspace):
    workspace.write_config(ODD.format(url=server.url("/existing")) + '\n\n[[sites]]\nname = "blog"\n'
                           'feeds = ["https://blog.example/feed"]\n')
    before = workspace.config.read_bytes()
    result = workspace.run("add", "https://example.org/other", "--name", "existing", expect=2)
    assert f"{workspace.config}: the name 'existing' is already taken by target 'existing'" in result.stderr
    result = workspace.run("add", "--site", server.url("/"), "--name", "blog", expect=2)
    assert "already taken by site 'blog'" in result.stderr
    assert workspace.config.read_bytes() == before
    assert server.requests == []                     # refused before fetching anything


def test_a_url_already_watched_is_refused(server, workspace):
    b = base(server)
    workspace.write_config(ODD.format(url=server.url("/existing")) + f'\n\n[[sites]]\nname = "blog"\n'
                           f'feeds = ["{b}/feed.xml"]\n')
    before = workspace.config.read_bytes()
    # the same page, spelled differently: fragment, tracking parameter, upper-case host
    for url in (server.url("/existing#top"), server.url("/existing?utm_source=x"),
                f"HTTP://127.0.0.1:{server.port}/existing"):
        result = workspace.run("add", url, expect=2)
        assert f"{workspace.config}: {url} is already watched by target 'existing'" in result.stderr
    # a blog whose feed another site already reads
    server.set("/", home('<link rel="alternate" type="application/rss+xml" href="/feed.xml">'))
    result = workspace.run("add", "--site", server.url("/"), expect=2)
    assert f"{b}/feed.xml is already watched by site 'blog'" in result.stderr
    assert workspace.config.read_bytes() == before


def test_a_broken_config_is_refused(workspace):
    for text in ('[[targets]]\nname = "a"\nurl = "https://example.org/"\nintervl = "5m"\n',   # unknown key
                 '[[targets]\nname = "a"\n'):                                                # not TOML
        workspace.write_config(text)
        result = workspace.run("add", "https://example.org/new", expect=2)
        assert str(workspace.config) in result.stderr
        assert workspace.config.read_text() == text
    assert "not valid TOML" in result.stderr


def test_an_entry_that_would_not_load_is_taken_back(workspace):
    workspace.write_config(PLAIN)
    workspace.config.chmod(0o600)
    result = workspace.run("add", "https://example.org/", "--name", "no spaces allowed", expect=2)
    assert "targets[0] (target 'no spaces allowed'), key 'name'" in result.stderr
    assert "is unchanged" in result.stderr
    assert workspace.config.read_text() == PLAIN
    assert workspace.config.stat().st_mode & 0o777 == 0o600
    assert sorted(os.listdir(workspace.path)) == ["targets.toml"]


# ---- the pure functions -------------------------------------------------------------------------

def test_feeds_in_html_resolves_against_base_href_and_reads_only_the_head():
    page = (b'<html><head><base href="https://cdn.example.com/blog/">'
            b'<link rel="alternate" type="application/rss+xml" href="rss.xml#x">'
            b'<link rel="alternate" type="application/atom+xml" href="https://example.com/atom.xml?utm_source=a">'
            b'<link rel="alternate" type="application/rss+xml" href="rss.xml">'
            b'<link rel="alternate" type="application/rss+xml" href="javascript:alert(1)">'
            b'</head><body><p>x</p><link rel="alternate" type="application/rss+xml" href="/late.xml"></body></html>')
    assert feeds_in_html(page, "https://example.com/") == ["https://cdn.example.com/blog/rss.xml",
                                                           "https://example.com/atom.xml"]
    only_comments = b'<head><link rel="alternate" type="application/rss+xml" href="/comments/feed/"></head>'
    assert feeds_in_html(only_comments, "https://example.com/") == ["https://example.com/comments/feed/"]
    assert feeds_in_html(b"", "https://example.com/") == []


def test_sitemaps_in_robots():
    robots = ("User-agent: *\nDisallow: /\n# Sitemap: https://example.com/commented.xml\n"
              "SITEMAP:https://example.com/a.xml\nSitemap: /relative.xml\nSitemap: https://example.com/a.xml\n"
              "Sitemap:\nDisallow: /sitemap: no\n")
    assert sitemaps_in_robots(robots, "https://example.com/robots.txt") == ["https://example.com/a.xml",
                                                                             "https://example.com/relative.xml"]


def test_names():
    assert target_name("https://www.Example.com/blog/2024/hello-world.html", set()) == "example.com-2024-hello-world"
    assert target_name("https://example.com/", {"Example.com"}) == "example.com-2"
    assert site_name("https://www.example.com/blog/", set()) == "example.com"
    assert site_name("https://www.example.com/", {"example.com", "example.com-2"}) == "example.com-3"


def test_append_entry_keeps_crlf_and_extends_an_inline_array():
    text = "# c\r\n[[targets]]\r\nname = \"a\"\r\nurl = \"https://a.example/\"\r\n"
    new = append_entry(text, "sites", {"name": "s", "feeds": ["https://s/a", "https://s/b"], "sitemaps": []})
    assert new == text + ('\r\n[[sites]]\r\nname = "s"\r\nfeeds = [\r\n    "https://s/a",\r\n    "https://s/b",\r\n]'
                          '\r\nsitemaps = []\r\n')
    inline = 'targets = [ { name = "a", url = "https://a.example/" } ]  # inline\n'
    data = tomllib.loads(append_entry(inline, "targets", {"name": "b", "url": "https://b.example/"}))
    assert data["targets"] == [{"name": "a", "url": "https://a.example/"}, {"name": "b", "url": "https://b.example/"}]
