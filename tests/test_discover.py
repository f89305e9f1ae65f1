"""Discovery of a blog's posts from feeds and sitemaps (monitor.discover): pure functions over
bytes. Every fixture is generated here; nothing leaves the machine."""
from __future__ import annotations

import gzip
import re
import socket
import threading
import time
import tracemalloc
import zlib
from datetime import datetime, timezone

import pytest

from monitor.discover import (DiscoveryError, Entry, Sitemap, canonical, canonical_link, matches, name_for, parse_feed,
                              parse_sitemap)

FEED = "https://blog.example.com/feed/"
SITEMAP = "https://blog.example.com/sitemap.xml"
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")   # what targets.toml accepts as a target name


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


# ---- feeds ----------------------------------------------------------------------------------------

RSS = b"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/">
<channel>
  <title>Example Blog</title>
  <link>https://blog.example.com/</link>
  <item>
    <title>Federal agencies continue to advance capabilities</title>
    <link>/blog/2018/01/24/federal-agencies-continue/?utm_source=rss&amp;utm_medium=rss&amp;utm_campaign=x</link>
    <pubDate>Wed, 24 Jan 2018 10:00:00 -0800</pubDate>
  </item>
  <item>
    <title>A <![CDATA[<em>second</em>]]> post</title>
    <link>https://Blog.Example.com:443/blog/2018/02/01/second/?fbclid=abc#comments</link>
    <pubDate>Thu, 01 Feb 2018 09:30:00 GMT</pubDate>
  </item>
  <item>
    <title>The same post, linked from a newsletter</title>
    <link>https://blog.example.com/blog/2018/01/24/federal-agencies-continue/?utm_source=newsletter</link>
  </item>
  <item>
    <title>Permalink only in the guid</title>
    <guid>https://blog.example.com/blog/2018/03/05/guid-only/</guid>
  </item>
  <item>
    <title>No usable link at all</title>
    <guid isPermaLink="false">tag:blog.example.com,2018:42</guid>
  </item>
</channel>
</rss>"""


def test_rss2_relative_links_and_tracking_parameters_give_one_clean_url_per_post():
    entries = parse_feed(RSS, FEED)

    assert [e.url for e in entries] == [
        "https://blog.example.com/blog/2018/01/24/federal-agencies-continue/",
        "https://blog.example.com/blog/2018/02/01/second/",
        "https://blog.example.com/blog/2018/03/05/guid-only/",
    ]
    first = entries[0]
    assert first.title == "Federal agencies continue to advance capabilities"   # the first of the duplicates
    assert first.published == utc(2018, 1, 24, 18, 0)                           # -0800 -> UTC, aware
    assert first.published.tzinfo is not None and first.updated is None
    assert entries[1].title == "A second post"                                   # markup in a title dropped
    assert entries[2].published is None and entries[2].updated is None


ATOM = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:base="https://news.example.org/en/">
  <title>Newsroom</title>
  <id>tag:news.example.org,2018:feed</id>
  <updated>2018-06-18T09:12:00Z</updated>
  <entry>
    <title type="html">Cloud &lt;b&gt;and&lt;/b&gt; the public sector</title>
    <link rel="edit" href="https://news.example.org/api/posts/17"/>
    <link rel="replies" type="text/html" href="posts/cloud/comments"/>
    <link rel="alternate" type="application/json" href="posts/cloud.json"/>
    <link rel="alternate" type="text/html" href="posts/cloud/"/>
    <id>tag:news.example.org,2018:17</id>
    <published>2018-01-24T10:00:00+01:00</published>
    <updated>2018-06-18T09:12:00Z</updated>
  </entry>
  <entry>
    <title>Link without rel</title>
    <link href="https://news.example.org/en/posts/plain"/>
    <id>tag:news.example.org,2018:18</id>
    <updated>2018-02-01T00:00:00Z</updated>
  </entry>
</feed>"""


def test_atom_entry_url_is_its_alternate_html_link_resolved_against_xml_base():
    entries = parse_feed(ATOM, "https://news.example.org/feed.atom")

    assert entries == [
        Entry(url="https://news.example.org/en/posts/cloud/", title="Cloud and the public sector",
              published=utc(2018, 1, 24, 9, 0), updated=utc(2018, 6, 18, 9, 12)),
        Entry(url="https://news.example.org/en/posts/plain", title="Link without rel",
              published=None, updated=utc(2018, 2, 1)),
    ]
    assert parse_feed(gzip.compress(ATOM), "https://news.example.org/feed.atom") == entries   # a .gz file


def test_rss1_rdf_and_rss091_feeds_are_read_too():
    rss1 = b"""<?xml version="1.0"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/"
         xmlns:dc="http://purl.org/dc/elements/1.1/">
  <channel rdf:about="https://old.example.com/"><title>Old</title><link>https://old.example.com/</link></channel>
  <item rdf:about="https://old.example.com/2004/05/hello.html">
    <title>Hello</title><link>https://old.example.com/2004/05/hello.html</link><dc:date>2004-05-01T12:00:00Z</dc:date>
  </item>
</rdf:RDF>"""
    assert parse_feed(rss1, "https://old.example.com/index.rdf") == [
        Entry("https://old.example.com/2004/05/hello.html", "Hello", None, utc(2004, 5, 1, 12))]  # dc:date

    rss091 = b"""<?xml version="1.0"?>
<rss version="0.91"><channel><title>Older</title><link>http://older.example.com/</link>
<item><title>One</title><link>http://older.example.com/one</link></item></channel></rss>"""
    assert [e.url for e in parse_feed(rss091, "http://older.example.com/rss.xml")] == ["http://older.example.com/one"]


def test_blank_lines_and_a_bom_before_the_xml_declaration_are_tolerated():
    assert len(parse_feed(b"\xef\xbb\xbf\n\n  " + RSS, FEED)) == 3


# ---- sitemaps -----------------------------------------------------------------------------------

def test_sitemap_index_leads_to_a_gzipped_child_sitemap():
    index = b"""<?xml version="1.0" encoding="UTF-8"?>
<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
  <sitemap><loc>https://blog.example.com/post-sitemap.xml.gz</loc><lastmod>2018-06-18T09:12:00+00:00</lastmod></sitemap>
  <sitemap><loc>/page-sitemap.xml</loc></sitemap>
</sitemapindex>"""
    child = gzip.compress(b"""<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"
        xmlns:image="http://www.google.com/schemas/sitemap-image/1.1">
  <url><loc>https://blog.example.com/blog/2018/01/24/federal-agencies-continue/</loc>
       <lastmod>2018-06-18T11:12:00+02:00</lastmod>
       <image:image><image:loc>https://blog.example.com/a.png</image:loc></image:image></url>
  <url><loc> https://blog.example.com/blog/2018/02/01/second/#top </loc><lastmod>2018-02-01</lastmod></url>
  <url><loc>https://blog.example.com/blog/2018/02/01/second/?utm_source=sitemap</loc></url>
  <url><loc>https://blog.example.com/about/</loc><lastmod>not a date</lastmod></url>
  <url><loc>mailto:press@example.com</loc></url>
</urlset>""")

    parsed = parse_sitemap(index, SITEMAP)
    assert parsed == Sitemap(urls=[], sitemaps=["https://blog.example.com/post-sitemap.xml.gz",
                                                "https://blog.example.com/page-sitemap.xml"])

    posts = parse_sitemap(child, parsed.sitemaps[0])
    assert posts.sitemaps == []
    assert posts.urls == [
        ("https://blog.example.com/blog/2018/01/24/federal-agencies-continue/", utc(2018, 6, 18, 9, 12)),
        ("https://blog.example.com/blog/2018/02/01/second/", utc(2018, 2, 1)),
        ("https://blog.example.com/about/", None),
    ]


def test_plain_text_sitemap_one_url_per_line():
    body = (b"\xef\xbb\xbfhttps://blog.example.com/blog/one/\r\n"
            b"\r\n"
            b"https://blog.example.com/blog/two/?utm_campaign=spring\n"
            b"https://blog.example.com/blog/two/\n"
            b"   https://BLOG.example.com/blog/three/   \n")
    assert parse_sitemap(body, "https://blog.example.com/sitemap.txt").urls == [
        ("https://blog.example.com/blog/one/", None),
        ("https://blog.example.com/blog/two/", None),
        ("https://blog.example.com/blog/three/", None),
    ]


def test_plain_text_that_is_not_a_url_list_is_not_a_sitemap():
    with pytest.raises(DiscoveryError) as err:
        parse_sitemap(b"Not Found\n\nThe requested URL was not found on this server.\n", SITEMAP)
    assert str(err.value) == (f"sitemap {SITEMAP}: not a sitemap (line 1 is not an absolute http(s) URL: "
                              "'Not Found')")


def test_a_feed_offered_as_a_sitemap_lists_its_posts():
    assert parse_sitemap(RSS, SITEMAP).urls[:2] == [
        ("https://blog.example.com/blog/2018/01/24/federal-agencies-continue/", utc(2018, 1, 24, 18)),
        ("https://blog.example.com/blog/2018/02/01/second/", utc(2018, 2, 1, 9, 30)),
    ]


# ---- URLs, filters, names -------------------------------------------------------------------

def test_canonical_collapses_spellings_of_one_post_but_keeps_the_scheme():
    same = [
        "https://blog.example.com/blog/post/",
        "HTTPS://Blog.Example.COM/blog/post/",
        "https://blog.example.com:443/blog/post/",
        "https://blog.example.com/blog/post/#comments",
        "https://blog.example.com/blog/post/?utm_source=twitter&utm_medium=social",
        "https://blog.example.com/blog/post/?fbclid=IwAR0&gclid=x&mc_cid=1",
        "https://user:secret@blog.example.com/blog/post/",
    ]
    assert {canonical(u) for u in same} == {"https://blog.example.com/blog/post/"}

    # Real differences stay apart.
    assert canonical("http://blog.example.com/blog/post/") == "http://blog.example.com/blog/post/"
    assert canonical("https://blog.example.com/blog/post") != canonical("https://blog.example.com/blog/post/")
    assert canonical("https://blog.example.com/Blog/Post/") == "https://blog.example.com/Blog/Post/"
    assert canonical("https://blog.example.com:8443/x") == "https://blog.example.com:8443/x"
    assert canonical("https://example.com/?p=2") != canonical("https://example.com/?p=3")
    assert canonical("https://example.com/article.pl?sid=04/05/01/1234") == \
        "https://example.com/article.pl?sid=04/05/01/1234"            # sid is a story id there, not a session

    # Query sorted, empty path becomes "/", escapes and non-ASCII spelled one way.
    assert canonical("https://example.com?b=2&a=1&utm_term=x") == "https://example.com/?a=1&b=2"
    assert canonical("https://example.com/caf%c3%a9 au lait") == canonical("https://example.com/café%20au%20lait")
    assert canonical("https://Bücher.example/") == "https://xn--bcher-kva.example/"

    for bad in ("mailto:press@example.com", "/relative/path", "javascript:alert(1)", "https://x:99999/"):
        with pytest.raises(DiscoveryError):
            canonical(bad)


def test_include_and_exclude_patterns():
    post = "https://blog.example.com/blog/2018/01/24/federal-agencies-continue/"
    tag = "https://blog.example.com/tag/cloud/"
    assert matches(post, [], []) and matches(tag, [], [])
    assert matches(post, ["*/blog/20*"], []) and not matches(tag, ["*/blog/20*"], [])
    assert not matches(post, [], ["*/2018/01/*"])
    assert not matches(post, ["https://blog.example.com/*"], ["*federal*"])     # exclude wins
    assert matches(tag, ["*/blog/*", "*/tag/*"], [])


def test_names_follow_the_url_and_never_collide():
    url = "https://blogs.microsoft.com/blog/2018/01/24/federal-agencies-continue/"
    assert name_for("msblog", url, set()) == "msblog-2018-01-24-federal-agencies-continue"

    taken: set[str] = set()
    names = []
    for u in [url, url + "?utm_source=x", url.replace("https:", "http:"), url.upper().replace("HTTPS:", "https:")]:
        names.append(name_for("msblog", u, taken))
        taken.add(names[-1])
    assert names == ["msblog-2018-01-24-federal-agencies-continue",
                     "msblog-2018-01-24-federal-agencies-continue-2",
                     "msblog-2018-01-24-federal-agencies-continue-3",
                     "msblog-2018-01-24-federal-agencies-continue-4"]   # unique even ignoring case

    assert name_for("acme", "https://acme.example/news/archive/2019/Launch%20Day.html", set()) == \
        "acme-2019-launch-day"
    assert name_for("acme", "https://acme.example/?p=123", set()) == "acme-p-123"
    assert name_for("acme", "https://acme.example/", set()) == "acme-home"
    assert name_for("acme", "https://acme.example/posts/café-crème/", set()) == "acme-cafe-creme"
    assert NAME.match(name_for("acme", "https://acme.example/博客/文章/", set()))

    long_url = "https://acme.example/" + "/".join(["a-very-long-segment-of-a-slug"] * 10)
    taken = {name_for("acme", long_url, set())}
    second = name_for("acme", long_url, taken)
    for name in (*taken, second):
        assert len(name) <= 120 and NAME.match(name)
    assert second.endswith("-2") and second not in taken


# ---- hostile and broken documents ----------------------------------------------------------------

class ConnectionRecorder:
    """A TCP listener on loopback that counts every connection made to it."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.running = True
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while self.running:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def settle(self) -> int:
        time.sleep(0.3)
        return self.connections

    def close(self):
        self.running = False
        self.thread.join()
        self.sock.close()


@pytest.fixture
def recorder():
    rec = ConnectionRecorder()
    yield rec
    rec.close()


def test_the_connection_recorder_does_see_a_fetch(recorder):
    """The network assertions below mean something: a real fetch of its URL is counted."""
    import urllib.request
    with pytest.raises(OSError):
        urllib.request.urlopen(recorder.url("/evil.dtd"), timeout=2)
    assert recorder.settle() == 1


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
  <!ENTITY lol "lol">
  <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
  <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
  <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
  <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
  <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
  <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
  <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<ROOT><url><loc>https://blog.example.com/&lol9;</loc></url></ROOT>"""


@pytest.mark.parametrize("root", [b"urlset", b"rss"])
def test_billion_laughs_is_refused_without_expanding(root):
    body = BILLION_LAUGHS.replace(b"ROOT", root)
    started = time.monotonic()
    with pytest.raises(DiscoveryError) as err:
        parse_sitemap(body, SITEMAP) if root == b"urlset" else parse_feed(body, FEED)
    assert time.monotonic() - started < 1
    what = f"sitemap {SITEMAP}" if root == b"urlset" else f"feed {FEED}"
    assert str(err.value) == f"{what}: XML entity declarations are not allowed"


@pytest.mark.parametrize("body, parse, expected", [
    (b"""<?xml version="1.0"?><!DOCTYPE urlset [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<urlset><url><loc>https://blog.example.com/?leak=&xxe;</loc></url></urlset>""",
     parse_sitemap, f"sitemap {SITEMAP}: XML entity declarations are not allowed"),
    (b"""<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<rss version="2.0"><channel><item><title>&xxe;</title><link>https://blog.example.com/x</link></item></channel></rss>""",
     parse_feed, f"feed {FEED}: XML entity declarations are not allowed"),
    # feedparser.parse() opens a bytes argument that names a file; parse_feed never lets it.
    (b"/etc/passwd", parse_feed, f"feed {FEED}: not a feed (not XML)"),
])
def test_external_entity_reading_a_local_file_is_refused(body, parse, expected):
    with pytest.raises(DiscoveryError) as err:
        parse(body, FEED if parse is parse_feed else SITEMAP)
    assert str(err.value) == expected
    assert "root:" not in str(err.value)     # the first line of /etc/passwd, on every Unix


def test_external_dtd_and_parameter_entities_are_never_fetched(recorder):
    dtd = recorder.url("/evil.dtd")
    bodies = [
        f'<?xml version="1.0"?><!DOCTYPE urlset SYSTEM "{dtd}"><urlset><url><loc>&xxe;</loc></url></urlset>',
        f'<?xml version="1.0"?><!DOCTYPE urlset [<!ENTITY % remote SYSTEM "{dtd}"> %remote;]><urlset/>',
        f'<?xml version="1.0"?><!DOCTYPE urlset [<!ENTITY xxe SYSTEM "{dtd}">]>'
        '<urlset><url><loc>&xxe;</loc></url></urlset>',
        '<?xml version="1.0"?><!DOCTYPE urlset SYSTEM "file:///etc/passwd"><urlset/>',
    ]
    messages = []
    for body in bodies:
        with pytest.raises(DiscoveryError) as err:
            parse_sitemap(body.encode(), SITEMAP)
        messages.append(str(err.value))
    assert messages == [
        f"sitemap {SITEMAP}: external DTDs are not allowed ({dtd})",
        f"sitemap {SITEMAP}: XML entity declarations are not allowed",
        f"sitemap {SITEMAP}: XML entity declarations are not allowed",
        f"sitemap {SITEMAP}: external DTDs are not allowed (file:///etc/passwd)",
    ]
    assert recorder.settle() == 0


def test_netscape_rss091_doctype_is_accepted_but_not_fetched(recorder):
    body = f"""<?xml version="1.0"?>
<!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN" "{recorder.url('/rss-0.91.dtd')}">
<rss version="0.91"><channel><title>Old</title><link>http://old.example.com/</link>
<item><title>One</title><link>http://old.example.com/one.html</link></item></channel></rss>""".encode()
    assert [e.url for e in parse_feed(body, "http://old.example.com/rss.xml")] == ["http://old.example.com/one.html"]
    assert recorder.settle() == 0


def _gzip_bomb(size: int) -> bytes:
    """`size` bytes of an XML-looking document, gzipped, built without holding it in memory."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    chunk = b" " * 1_000_000
    parts = [packer.compress(b'<?xml version="1.0"?><urlset>')]
    parts += [packer.compress(chunk) for _ in range(size // len(chunk))]
    return b"".join(parts) + packer.flush()


def test_gzip_bomb_stops_at_the_decompressed_cap():
    bomb = _gzip_bomb(300_000_000)
    assert len(bomb) < 1_000_000          # small on the wire
    tracemalloc.start()
    try:
        with pytest.raises(DiscoveryError) as err:
            parse_sitemap(bomb, "https://blog.example.com/sitemap.xml.gz")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert str(err.value) == ("sitemap https://blog.example.com/sitemap.xml.gz: "
                              "larger than 50,000,000 bytes once decompressed")
    assert peak < 150_000_000             # it never held the 300 MB


def test_size_and_entry_limits():
    with pytest.raises(DiscoveryError, match=r"^sitemap \S+: body is larger than 1,000 bytes$"):
        parse_sitemap(b"<urlset>" + b" " * 2000 + b"</urlset>", SITEMAP, max_bytes=1000)
    with pytest.raises(DiscoveryError, match=r"^feed \S+: body is larger than 1,000 bytes$"):
        parse_feed(RSS + b" " * 1000, FEED, max_bytes=1000)

    urls = "".join(f"<url><loc>https://blog.example.com/p/{i}</loc></url>" for i in range(4))
    body = f"<urlset>{urls}</urlset>".encode()
    assert len(parse_sitemap(body, SITEMAP, max_entries=4).urls) == 4
    with pytest.raises(DiscoveryError, match=r"^sitemap \S+: more than 3 entries \(4\)$"):
        parse_sitemap(body, SITEMAP, max_entries=3)
    with pytest.raises(DiscoveryError, match=r"^feed \S+: more than 2 entries \(5\)$"):
        parse_feed(RSS, FEED, max_entries=2)
    text = "".join(f"https://blog.example.com/p/{i}\n" for i in range(4)).encode()
    with pytest.raises(DiscoveryError, match=r"^sitemap \S+: more than 3 entries$"):
        parse_sitemap(text, SITEMAP, max_entries=3)


@pytest.mark.parametrize("body, parse, message", [
    (b'<?xml version="1.0"?><urlset><url><loc>https://blog.example.com/a</url></urlset>', parse_sitemap,
     "not well-formed XML (Opening and ending tag mismatch: loc line 1 and url"),
    (RSS[:600], parse_feed, "not well-formed XML"),
    (b"<rss><channel><item><title>caf&eacute;</title></item></channel></rss>", parse_feed,
     "not well-formed XML (Entity 'eacute' not defined"),
    (b"\x1f\x8b\x08\x00garbage", parse_sitemap, "broken gzip data"),
    (gzip.compress(b"<urlset>" + bytes(range(256)) * 64 + b"</urlset>")[:-100], parse_sitemap,
     "broken gzip data (Compressed file ended before the end-of-stream marker was reached)"),
    (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>', parse_sitemap,
     "not a sitemap (root element <svg>)"),
    (b'<?xml version="1.0"?><urlset/>', parse_feed, "not a feed (root element <urlset>)"),
    (b'{"posts": []}', parse_feed, "not a feed (not XML)"),
    (b"\x00\x01\x02\xff\xfe binary", parse_sitemap, "not a sitemap (neither XML nor UTF-8 text)"),
])
def test_broken_documents_name_the_problem(body, parse, message):
    url = FEED if parse is parse_feed else SITEMAP
    with pytest.raises(DiscoveryError) as err:
        parse(body, url)
    kind = "feed" if parse is parse_feed else "sitemap"
    assert str(err.value).startswith(f"{kind} {url}: {message}")


HTML_PAGES = [
    b"<!DOCTYPE html><html><head><title>Blog</title></head><body><p>Hello<br></body></html>",
    b"\n\n<html lang=en><body><a href=/feed/>RSS</a>",
    b"""<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" "http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd">
<html xmlns="http://www.w3.org/1999/xhtml"><head><title>x</title></head><body/></html>""",
    b"""<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml"><body/></html>""",
]


@pytest.mark.parametrize("page", HTML_PAGES)
def test_an_html_page_is_not_a_feed_or_a_sitemap(page):
    with pytest.raises(DiscoveryError) as err:
        parse_feed(page, FEED)
    assert str(err.value) == f"feed {FEED}: not a feed (HTML page?)"
    with pytest.raises(DiscoveryError) as err:
        parse_sitemap(page, SITEMAP)
    assert str(err.value) == f"sitemap {SITEMAP}: not a sitemap (HTML page?)"


@pytest.mark.parametrize("body", [b"", b"   \r\n\t", b"\xef\xbb\xbf\n", gzip.compress(b"")])
def test_an_empty_body_is_an_error(body):
    with pytest.raises(DiscoveryError) as err:
        parse_feed(body, FEED)
    assert str(err.value) == f"feed {FEED}: empty body"
    with pytest.raises(DiscoveryError) as err:
        parse_sitemap(body, SITEMAP)
    assert str(err.value) == f"sitemap {SITEMAP}: empty body"


def test_an_empty_but_valid_sitemap_and_feed_are_not_errors():
    assert parse_sitemap(b'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"/>', SITEMAP) == Sitemap()
    assert parse_feed(b'<rss version="2.0"><channel><title>New blog</title></channel></rss>', FEED) == []


# ---- a page's own <link rel=canonical> ------------------------------------------------------------

POST = "https://blog.example.com/2018/01/post/?utm_source=x"


@pytest.mark.parametrize("head, expected", [
    ('<link rel="canonical" href="https://blog.example.com/2018/01/post/">', "https://blog.example.com/2018/01/post/"),
    ('<link rel="canonical" href="/2018/01/new-slug/?b=2&amp;a=1">', "https://blog.example.com/2018/01/new-slug/?a=1&b=2"),
    ('<base href="https://blog.example.com/archive/"><link rel=Canonical href="post-2/">',
     "https://blog.example.com/archive/post-2/"),
    ('<link rel="canonical" href="https://other.example.org/2018/01/post/">', None),  # another host
    ('<link rel="canonical" href="https://blog.example.com/">', None),  # the home page, named on every page
    ('<link rel="alternate" href="/feed/">', None),
    ('<link rel="canonical" href="javascript:alert(1)">', None),
])
def test_canonical_link_is_the_pages_own_on_its_own_host(head, expected):
    page = f"<!doctype html><html><head><title>t</title>{head}</head><body><p>text</p></body></html>"
    assert canonical_link(page, POST) == expected
    assert canonical_link(page.encode(), POST) == expected


def test_canonical_link_reads_only_the_head_and_survives_odd_pages():
    late = '<html><head></head><body><link rel="canonical" href="/elsewhere/"></body></html>'
    assert canonical_link(late, POST) is None
    xhtml = ('<?xml version="1.0" encoding="utf-8"?><html xmlns="http://www.w3.org/1999/xhtml"><head>'
             '<link rel="canonical" href="/2018/01/post/"/></head><body/></html>')
    assert canonical_link(xhtml, POST) == "https://blog.example.com/2018/01/post/"
    assert canonical_link("", POST) is None
    assert canonical_link("<html><head><link rel=canonical href=/a/>", POST) == "https://blog.example.com/a/"
