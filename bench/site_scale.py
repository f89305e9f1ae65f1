"""Benchmark a whole watched blog: discovery, a first pass and the daemon over N posts.

Generates a blog of N (default 10,000) small posts (~4-8 KB of WordPress-like HTML each, published
over the last five years), a sitemap index with gzipped child sitemaps of 2,000 URLs each and an
RSS feed of the newest 20, serves it with a private nginx on 127.0.0.1, and writes a targets.toml
with one [[sites]] entry for it. Then, each as a separate process:

  discovery   `monitor sites --discover`: read the feed and sitemaps, create the targets
  check pass  `monitor check`: every post once (their first versions)
  daemon      `monitor run` for a fixed time, its RSS sampled every second, then SIGTERM

Afterwards it reads targets.next_due_at and targets.interval_s from the SQLite database to see how
the posts' next checks are spread over one max_interval, and how their pace varies. This is a
measurement, not a test: the exit status is 0 whether or not the target (daemon peak RSS <= 150 MB)
is met, 1 when the harness itself fails, 2 when nginx is missing.

Usage: python bench/site_scale.py [--posts 10000] [--daemon-seconds 60] [--keep DIR] [--json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import html
import json
import os
import random
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape as xml_escape

import sitegen
import static_server

REFERENCE_POSTS = 10_000          # blog size the target was set for
DAEMON_RSS_LIMIT_MB = 150
SITE = "big"                      # the [[sites]] entry's name
SEED = 1
YEARS = 5                         # posts were published over this many years, up to now
PAGE_BYTES = (4_200, 7_800)       # each page's size is drawn uniformly from this range
URLS_PER_SITEMAP = 2_000          # a child sitemap's URLs (10,000 posts -> 5 children)
FEED_ITEMS = 20
MIN_INTERVAL, MAX_INTERVAL = 300.0, 86_400.0    # the site's min_interval "5m" and max_interval "1d"
BUCKET_S = 3600.0                 # the spread: hourly buckets over one max_interval
WINDOW_S = 300.0                  # ... and the busiest 5 minutes
UNIFORM_TRIALS = 200              # draws of a uniform random spread, for reference
AGE_FRACTION, GROWTH = 1 / 24, 1.5   # monitor/pace.py's rule, re-derived to check interval_s
STOP_TIMEOUT = 60.0               # seconds the daemon may take to stop after SIGTERM
MB = 1_000_000                    # decimal megabytes throughout
KIB = 1024

REPO_ROOT = Path(__file__).resolve().parent.parent
DB_NAME = "monitor.db"
# Stock nginx (its mime.types) serves .xml as text/xml and .txt as text/plain; .gz has no entry
# there, so a gzipped sitemap comes as application/octet-stream, as from most real servers.
EXTRA_TYPES = {"xml": "text/xml", "txt": "text/plain"}  # as a stock nginx serves them


class HarnessError(RuntimeError):
    pass


# --------------------------------------------------------------------------
# The blog
# --------------------------------------------------------------------------

@dataclass
class BlogPost:
    index: int                    # 1 = oldest
    title: str
    path: str                     # /YYYY/MM/DD/slug.html
    published: dt.datetime        # aware, UTC


@dataclass
class Blog:
    posts: list[BlogPost]
    page_bytes: list[int]
    sitemap_url: str
    feed_url: str
    child_sitemaps: int
    sitemap_bytes: int            # the index plus its gzipped children, as served


def plan_posts(total: int, now: dt.datetime, seed: int = SEED) -> list[BlogPost]:
    """Titles, URLs and publication times (uniform over the last YEARS years, to the minute)."""
    rng = random.Random(f"{seed}/published")
    span = YEARS * 365.25 * 86400
    ages = sorted((rng.uniform(0, span) for _ in range(total)), reverse=True)
    posts, taken = [], set()
    for index, age in enumerate(ages, 1):
        published = (now - dt.timedelta(seconds=age)).replace(second=0, microsecond=0)
        title = sitegen.title_for(seed, index)
        slug = sitegen.slugify(title)[:80].strip("-") or f"post-{index}"
        path = f"/{published:%Y/%m/%d}/{slug}.html"
        n = 1
        while path in taken:
            n += 1
            path = f"/{published:%Y/%m/%d}/{slug}-{n}.html"
        taken.add(path)
        posts.append(BlogPost(index, title, path, published))
    return posts


def _nav() -> str:
    return "\n".join(f'<li class="menu-item menu-item-{40 + i}"><a href="/{sitegen.slugify(name)}/">'
                     f"{name}</a></li>" for i, name in enumerate(sitegen.NAV_ITEMS))


def render_page(post: BlogPost, base_url: str, recent: list[BlogPost], seed: int = SEED) -> str:
    """One post as a compact WordPress-like page of about PAGE_BYTES (drawn per post) bytes."""
    rng = random.Random(f"{seed}/blogpost/{post.index}")
    names = [sitegen.place_name(rng) for _ in range(rng.randint(2, 4))]
    names += [sitegen.person_name(rng) for _ in range(rng.randint(1, 2))]
    author, category = sitegen.person_name(rng), rng.choice(sitegen.CATEGORIES)
    tags = sorted({sitegen._pick(rng, "N") for _ in range(rng.randint(2, 5))})
    target = rng.randint(*PAGE_BYTES)
    # The article: 3-7 paragraphs, an h2 after one of the middle ones.
    paragraphs: list[list[str]] = [[] for _ in range(rng.randint(3, 7))]
    h2_after = rng.randrange(1, len(paragraphs) - 1) if len(paragraphs) > 2 else -1
    h2 = sitegen._join([sitegen._pick(rng, "A"), sitegen._pick(rng, "N"), sitegen._pick(rng, "P"),
                        rng.choice(names)])
    url, post_id = base_url + post.path, 1000 + post.index
    title = html.escape(post.title)
    when = post.published.isoformat()

    def page(description: str) -> str:
        blocks = []
        for i, sentences in enumerate(paragraphs):
            blocks.append(f"<p>{' '.join(sentences)}</p>")
            if i == h2_after:
                blocks.append(f'<h2 class="wp-block-heading">{h2}</h2>')
        body = "\n".join(blocks)
        recent_items = "\n".join(f'<li><a href="{p.path}">{html.escape(p.title)}</a></li>' for p in recent)
        tag_links = ", ".join(f'<a href="/tag/{t}/" rel="tag">{t}</a>' for t in tags)
        return f"""<!DOCTYPE html>
<html lang="en-GB">
<head>
<meta charset="UTF-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} &#8211; {sitegen.SITE_NAME}</title>
<meta name="description" content="{html.escape(description)}">
<link rel="canonical" href="{url}">
<meta property="og:type" content="article">
<meta property="og:title" content="{title}">
<meta property="og:url" content="{url}">
<meta property="article:published_time" content="{when}">
<link rel="alternate" type="application/rss+xml" title="{sitegen.SITE_NAME} &raquo; Feed" href="{base_url}/feed.xml">
<link rel="stylesheet" id="theme-style-css" href="/wp-content/themes/fieldnotes/style.css?ver=2.3.1" media="all">
</head>
<body class="post-template-default single single-post postid-{post_id}">
<div id="page" class="site">
<header id="masthead" class="site-header">
<p class="site-title"><a href="/" rel="home">{sitegen.SITE_NAME}</a></p>
<nav id="site-navigation" class="main-navigation"><ul id="primary-menu" class="menu">
{_nav()}
</ul></nav>
</header>
<main id="primary" class="site-main">
<article id="post-{post_id}" class="post-{post_id} post type-post status-publish hentry category-{sitegen.slugify(category)}">
<header class="entry-header">
<h1 class="entry-title">{title}</h1>
<div class="entry-meta"><time class="entry-date published" datetime="{when}">{post.published:%d %B %Y}</time> by <a class="url fn n" href="/author/{sitegen.slugify(author)}/">{author}</a></div>
</header>
<div class="entry-content">
{body}
</div>
<footer class="entry-footer"><span class="cat-links">Posted in <a href="/category/{sitegen.slugify(category)}/" rel="category tag">{category}</a></span> <span class="tags-links">Tagged {tag_links}</span></footer>
</article>
</main>
<aside id="secondary" class="widget-area"><section class="widget widget_recent_entries"><h2 class="widget-title">Recent Posts</h2>
<ul>
{recent_items}
</ul></section></aside>
<footer id="colophon" class="site-footer"><div class="site-info">&copy; {sitegen.SITE_NAME}. <a href="/privacy/">Privacy</a></div></footer>
</div>
</body>
</html>
"""

    # Fill the paragraphs, round-robin, until the page reaches its size (descriptions stay short).
    size = len(page("").encode())
    i = 0
    while size < target - 150 or any(not p for p in paragraphs):
        text = sitegen.sentence(rng, names)
        paragraphs[i % len(paragraphs)].append(text)
        size += len(text.encode()) + 1
        i += 1
    first = re.sub(r"<[^>]+>", "", paragraphs[0][0])
    return page(first[:150])


def _w3c(when: dt.datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _write_if_changed(path: Path, data: bytes) -> bool:
    """Write `data` unless the file already holds it. A rewritten file gets an mtime at least two
    seconds newer, so nginx's ETag and Last-Modified (from mtime and size) always move."""
    if path.is_file():
        if path.read_bytes() == data:
            return False
        old = path.stat().st_mtime
        path.write_bytes(data)
        new = max(path.stat().st_mtime, old + 2)
        os.utime(path, (new, new))
        return True
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return True


def write_sources(root: Path, base_url: str, posts: list[BlogPost]) -> tuple[int, int, list[str]]:
    """The sitemap index, its gzipped children and the RSS feed for `posts` (oldest first), plus
    robots.txt. Returns (children, bytes of the index and children, files that changed)."""
    changed = []

    def put(name: str, data: bytes) -> None:
        if _write_if_changed(root / name, data):
            changed.append(name)

    # Children of URLS_PER_SITEMAP posts, oldest first, as WordPress numbers them: a new post
    # lands in the last child (or starts a new one), the others stay byte-identical.
    children = []
    for number, start in enumerate(range(0, len(posts), URLS_PER_SITEMAP), 1):
        chunk = posts[start:start + URLS_PER_SITEMAP]
        urls = "".join(f"<url><loc>{xml_escape(base_url + p.path)}</loc><lastmod>{_w3c(p.published)}"
                       f"</lastmod></url>\n" for p in chunk)
        xml = ('<?xml version="1.0" encoding="UTF-8"?>\n'
               '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n' + urls + "</urlset>\n")
        name = f"sitemaps/post-sitemap{number}.xml.gz"
        put(name, gzip.compress(xml.encode("utf-8"), mtime=0))
        children.append((name, max(p.published for p in chunk)))
    index = ('<?xml version="1.0" encoding="UTF-8"?>\n'
             '<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n'
             + "".join(f"<sitemap><loc>{base_url}/{name}</loc><lastmod>{_w3c(when)}</lastmod></sitemap>\n"
                       for name, when in children)
             + "</sitemapindex>\n")
    put("sitemap.xml", index.encode("utf-8"))
    # The feed: the newest FEED_ITEMS posts, as WordPress's RSS 2.0.
    newest = sorted(posts, key=lambda p: p.published, reverse=True)[:FEED_ITEMS]
    items = "".join(f"""<item>
<title>{xml_escape(p.title)}</title>
<link>{xml_escape(base_url + p.path)}</link>
<dc:creator><![CDATA[{sitegen.person_name(random.Random(f"{SEED}/author/{p.index}"))}]]></dc:creator>
<pubDate>{p.published.strftime("%a, %d %b %Y %H:%M:%S +0000")}</pubDate>
<guid isPermaLink="false">{base_url}/?p={1000 + p.index}</guid>
<description><![CDATA[{p.title}. Read on.]]></description>
</item>
""" for p in newest)
    feed = f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:atom="http://www.w3.org/2005/Atom">
<channel>
<title>{sitegen.SITE_NAME}</title>
<atom:link href="{base_url}/feed.xml" rel="self" type="application/rss+xml" />
<link>{base_url}/</link>
<description>Gardens, journeys, kitchens and the odd bit of software</description>
<lastBuildDate>{newest[0].published.strftime("%a, %d %b %Y %H:%M:%S +0000")}</lastBuildDate>
<language>en-GB</language>
<generator>https://wordpress.org/?v=6.4.2</generator>
{items}</channel>
</rss>
"""
    put("feed.xml", feed.encode("utf-8"))
    put("robots.txt", f"User-agent: *\nAllow: /\n\nSitemap: {base_url}/sitemap.xml\n".encode())
    served = (root / "sitemap.xml").stat().st_size + sum((root / n).stat().st_size for n, _ in children)
    return len(children), served, changed


def write_blog(root: Path, base_url: str, total: int, now: dt.datetime, log) -> Blog:
    """Every post page, the sitemap index with its gzipped children, the RSS feed, robots.txt."""
    posts = plan_posts(total, now)
    recent = sorted(posts, key=lambda p: p.published, reverse=True)[:5]
    sizes = []
    for n, post in enumerate(posts, 1):
        path = root / post.path.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        data = render_page(post, base_url, recent).encode("utf-8")
        path.write_bytes(data)
        sizes.append(len(data))
        if n % 2000 == 0 and n < total:
            log(f"  {n} pages written")
    children, served, _ = write_sources(root, base_url, posts)
    return Blog(posts, sizes, f"{base_url}/sitemap.xml", f"{base_url}/feed.xml", children, served)


def publish_post(root: Path, base_url: str, blog: Blog, now: dt.datetime) -> tuple[BlogPost, list[str]]:
    """The blog publishes one more post now: its page, and the feed and sitemaps that list it
    (only the files whose bytes change are rewritten). Returns the post and the changed files."""
    index = len(blog.posts) + 1
    title = sitegen.title_for(SEED, index)
    published = now.replace(second=0, microsecond=0)
    post = BlogPost(index, title, f"/{published:%Y/%m/%d}/{sitegen.slugify(title)[:80]}-{index}.html", published)
    recent = sorted(blog.posts, key=lambda p: p.published, reverse=True)[:5]
    _write_if_changed(root / post.path.lstrip("/"), render_page(post, base_url, recent).encode("utf-8"))
    blog.posts.append(post)
    blog.child_sitemaps, blog.sitemap_bytes, changed = write_sources(root, base_url, blog.posts)
    return post, changed


def check_served(server: static_server.NginxServer, blog: Blog) -> None:
    """The documents and a post answer 200 with the expected types, and a post revalidates to 304."""
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        for url, wanted in ((blog.sitemap_url, "text/xml"), (blog.feed_url, "text/xml")):
            conn.request("GET", url.removeprefix(server.base_url))
            response = conn.getresponse()
            response.read()
            kind = (response.getheader("Content-Type") or "").split(";")[0]
            if response.status != 200 or kind != wanted:
                raise HarnessError(f"GET {url}: status {response.status}, Content-Type {kind!r}")
    finally:
        conn.close()
    static_server.check_conditional_get(server.port, blog.posts[0].path)


# --------------------------------------------------------------------------
# Running and measuring child processes
# --------------------------------------------------------------------------

@dataclass
class Measured:
    wall_s: float
    peak_rss_bytes: int           # os.wait4: the largest single process (this one or a reaped child)
    tree_peak_rss_bytes: int      # the most its whole process tree held at once, sampled
    processes: int                # the most processes its tree had at once, sampled
    requests: int | None = None   # as counted by nginx, when it has stub_status
    samples: list[tuple[float, int]] = field(default_factory=list)   # (s since start, own VmRSS)
    vm_hwm_bytes: int | None = None   # VmHWM just before SIGTERM (daemon only)
    stdout: str = ""
    stderr: str = ""


def _status_kib(pid: int, key: str) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def _tree(pid: int) -> list[int]:
    """pid and all its descendants, from /proc/*/stat."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo += children.get(p, [])
    return found


PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * PAGE_SIZE
    except (OSError, ValueError, IndexError):
        return 0


def run_measured(command: list[str], logs: Path, name: str, server: static_server.NginxServer, *,
                 cwd: Path, env: dict[str, str], run_for: float | None = None,
                 sample_every: float = 0.5) -> Measured:
    """Run `command`; its wall time, peak RSS (os.wait4) and sampled RSS of it and its tree.

    With `run_for`, the process is a daemon: after that many seconds its VmHWM is read and it
    gets SIGTERM; it must then exit with status 0 within STOP_TIMEOUT. Otherwise it must exit
    with status 0 by itself. Output goes to files so a chatty child can never block on a pipe.
    """
    before = server.requests_served()
    samples: list[tuple[float, int]] = []
    tree_peak, processes, hwm, stopped_at = 0, 0, None, None
    with open(logs / f"{name}.stdout", "w+b") as out, open(logs / f"{name}.stderr", "w+b") as err:
        start = time.perf_counter()
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=err, cwd=cwd, env=env)
        next_sample = start
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            now = time.perf_counter()
            if now >= next_sample:
                own = _rss_bytes(process.pid)
                if own:
                    samples.append((round(now - start, 2), own))
                tree = _tree(process.pid)
                tree_peak = max(tree_peak, sum(_rss_bytes(p) for p in tree))
                processes = max(processes, len(tree))
                next_sample = max(next_sample + sample_every, time.perf_counter())
            if run_for is not None and stopped_at is None and now - start >= run_for:
                kib = _status_kib(process.pid, "VmHWM")
                hwm = kib * KIB if kib is not None else None
                process.send_signal(signal.SIGTERM)
                stopped_at = now
            if stopped_at is not None and now - stopped_at > STOP_TIMEOUT:
                process.kill()
                os.wait4(process.pid, 0)
                raise HarnessError(f"{' '.join(command)} did not stop within {STOP_TIMEOUT:.0f} s of SIGTERM")
            time.sleep(min(0.05, max(0.005, next_sample - time.perf_counter())))
        wall = time.perf_counter() - start
        code = os.waitstatus_to_exitcode(status)
        process.returncode = code
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    if code != 0:
        raise HarnessError(f"{' '.join(command)} exited with status {code}\n--- stderr ---\n{stderr[-8000:]}")
    if run_for is not None and stopped_at is None:
        raise HarnessError(f"{' '.join(command)} exited by itself after {wall:.1f} s (expected to run "
                           f"{run_for:g} s)\n--- stderr ---\n{stderr[-8000:]}")
    rss = usage.ru_maxrss * KIB           # KiB on Linux
    measured = Measured(wall, rss, tree_peak, processes, samples=samples, vm_hwm_bytes=hwm,
                        stdout=stdout, stderr=stderr)
    if before is not None:
        measured.requests = server.requests_served() - before - 1   # minus the status request
    return measured


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    for name in ("no_proxy", "NO_PROXY"):   # never route the blog through a proxy
        env[name] = ",".join(filter(None, [env.get(name), "127.0.0.1", "localhost"]))
    return env


def write_config(work: Path, blog: Blog, robots: bool) -> Path:
    config = work / "targets.toml"
    config.write_text(f"""[monitor]
database = "sqlite:///{DB_NAME}"
snapshots = "snapshots"
per_host = 2            # requests in flight per host
concurrency = 16
host_delay = "0s"       # least time between two requests to one host
calibrate = false

[[sites]]
name = "{SITE}"
sitemaps = ["{blog.sitemap_url}"]
feeds = ["{blog.feed_url}"]
discover_interval = "1h"
min_interval = "5m"
max_interval = "1d"
robots = {"true" if robots else "false"}
""", encoding="utf-8")
    return config


# --------------------------------------------------------------------------
# Reading the database
# --------------------------------------------------------------------------

def _when(value) -> dt.datetime | None:
    """A stored datetime (SQLAlchemy writes them naive, in UTC) as aware UTC."""
    if value is None:
        return None
    parsed = dt.datetime.fromisoformat(str(value))
    return parsed.replace(tzinfo=dt.timezone.utc) if parsed.tzinfo is None else parsed.astimezone(dt.timezone.utc)


def connect(work: Path, write: bool = False) -> sqlite3.Connection:
    path = work / DB_NAME
    if not path.is_file():
        raise HarnessError(f"no database at {path}")
    return sqlite3.connect(f"file:{path}?mode={'rw' if write else 'ro'}", uri=True, timeout=30)


def site_row(work: Path) -> dict:
    with connect(work) as db:
        db.row_factory = sqlite3.Row
        row = db.execute("SELECT * FROM sites WHERE name = ?", (SITE,)).fetchone()
    if row is None:
        raise HarnessError(f"no row for site {SITE!r} in the sites table")
    return dict(row)


def post_counts(work: Path) -> dict[str, int]:
    with connect(work) as db:
        posts, versions, errors = db.execute(
            "SELECT count(*), count(last_version_id), sum(status = 'error') FROM targets "
            "WHERE site_id IS NOT NULL AND active").fetchone()
    return {"targets": posts, "with_version": versions, "errors": errors or 0}


def make_discovery_due(work: Path) -> None:
    """As if discover_interval had passed: the site's next discovery is due at its last one."""
    with connect(work, write=True) as db:
        db.execute("UPDATE sites SET next_discovery_at = last_discovery_at WHERE name = ?", (SITE,))


def due_before(work: Path, when: dt.datetime) -> int:
    count = 0
    with connect(work) as db:
        for (value,) in db.execute("SELECT next_due_at FROM targets WHERE site_id IS NOT NULL AND active"):
            due = _when(value)
            count += due is None or due <= when
    return count


def checked_since(work: Path, since: dt.datetime) -> int:
    count = 0
    with connect(work) as db:
        for (value,) in db.execute("SELECT last_check_at FROM targets WHERE site_id IS NOT NULL"):
            when = _when(value)
            count += when is not None and when >= since
    return count


@dataclass
class PostRow:
    next_due: dt.datetime | None
    interval_s: float
    last_check: dt.datetime | None
    published: dt.datetime | None
    last_change: dt.datetime | None
    streak: int
    status: str


def post_rows(work: Path) -> list[PostRow]:
    with connect(work) as db:
        rows = db.execute("SELECT next_due_at, interval_s, last_check_at, published_at, last_change_at, "
                          "unchanged_streak, status FROM targets WHERE site_id IS NOT NULL AND active")
        return [PostRow(_when(a), float(b or 0), _when(c), _when(d), _when(e), int(f or 0), g)
                for a, b, c, d, e, f, g in rows]


# --------------------------------------------------------------------------
# The spread of next checks, and the pace
# --------------------------------------------------------------------------

def busiest_window(offsets: list[float], window: float) -> tuple[int, float]:
    """The most offsets (sorted, seconds) within any `window` seconds, and where that window starts."""
    best, start_at, j = 0, 0.0, 0
    for i, t in enumerate(offsets):
        while t - offsets[j] >= window:
            j += 1
        if i - j + 1 > best:
            best, start_at = i - j + 1, offsets[j]
    return best, start_at


def bucket_counts(offsets: list[float], horizon: float, size: float) -> list[int]:
    counts = [0] * int(round(horizon / size))
    for t in offsets:
        counts[min(int(t // size), len(counts) - 1)] += 1
    return counts


def uniform_reference(n: int, horizon: float, trials: int = UNIFORM_TRIALS) -> dict:
    """max/mean bucket ratio and busiest-window count of n points drawn uniformly over the horizon."""
    rng = random.Random(f"{SEED}/uniform")
    ratios, windows = [], []
    for _ in range(trials):
        draws = sorted(rng.uniform(0, horizon) for _ in range(n))
        counts = bucket_counts(draws, horizon, BUCKET_S)
        ratios.append(max(counts) / (n / len(counts)) if n else 0.0)
        windows.append(busiest_window(draws, WINDOW_S)[0])
    ratios.sort()
    windows.sort()
    p95 = int(0.95 * (trials - 1))
    return {"trials": trials, "max_over_mean_median": statistics.median(ratios),
            "max_over_mean_p95": ratios[p95], "busiest_5min_median": statistics.median(windows),
            "busiest_5min_p95": windows[p95]}


def expected_interval(row: PostRow) -> float | None:
    """monitor/pace.py's interval for this row's last check, with no edits (this blog has none)."""
    if row.last_check is None:
        return None
    quiet = max((w for w in (row.published, row.last_change) if w is not None), default=None)
    by_age = MAX_INTERVAL if quiet is None else max(0.0, (row.last_check - quiet).total_seconds()) * AGE_FRACTION
    by_streak = MIN_INTERVAL * GROWTH ** min(row.streak, 64)
    return max(MIN_INTERVAL, min(MAX_INTERVAL, max(by_age, by_streak)))


def interval_class(seconds: float) -> str:
    if seconds <= 0:
        return "not set (never checked)"
    if abs(seconds - MIN_INTERVAL) < 1:
        return "= min_interval (5m)"
    if abs(seconds - MAX_INTERVAL) < 1:
        return "= max_interval (1d)"
    if seconds <= 3600:
        return "5m < i <= 1h"
    if seconds <= 6 * 3600:
        return "1h < i <= 6h"
    return "6h < i < 1d"


INTERVAL_CLASSES = ("= min_interval (5m)", "5m < i <= 1h", "1h < i <= 6h", "6h < i < 1d",
                    "= max_interval (1d)", "not set (never checked)")
AGE_CLASSES = ((2 * 3600, "< 2 h"), (86400, "2 h - 1 d"), (7 * 86400, "1 - 7 d"), (24 * 86400, "7 - 24 d"),
               (float("inf"), ">= 24 d"))


def spread_report(rows: list[PostRow], now: dt.datetime) -> dict:
    horizon = MAX_INTERVAL
    null = sum(r.next_due is None for r in rows)
    overdue = sum(r.next_due is not None and r.next_due <= now for r in rows)
    offsets = sorted(max(0.0, (r.next_due - now).total_seconds()) for r in rows if r.next_due is not None)
    beyond = sum(t >= horizon for t in offsets)
    within = [t for t in offsets if t < horizon]      # overdue posts count as due now (bucket 0)
    counts = bucket_counts(within, horizon, BUCKET_S)
    mean = len(within) / len(counts) if counts else 0.0
    busiest, busiest_at = busiest_window(within, WINDOW_S)
    total = len(rows)
    # Where each post's next check falls within its interval, from its last check (0 = at once,
    # 1 = a whole interval later): uniform over [0, 1] after a first check.
    fractions = sorted((r.next_due - r.last_check).total_seconds() / r.interval_s for r in rows
                       if r.next_due and r.last_check and r.interval_s > 0)
    deciles = ([round(fractions[min(len(fractions) - 1, int(q * len(fractions)))], 3)
                for q in (0.0, 0.1, 0.25, 0.5, 0.75, 0.9)] + [round(fractions[-1], 3)]) if fractions else []
    classes = {c: 0 for c in INTERVAL_CLASSES}
    for r in rows:
        classes[interval_class(r.interval_s)] += 1
    by_age = []
    for limit, label in AGE_CLASSES:
        lower = max([a for a, _ in AGE_CLASSES if a < limit], default=0)
        members = [r for r in rows if r.published is not None
                   and lower <= (now - r.published).total_seconds() < limit]
        intervals = [r.interval_s for r in members if r.interval_s > 0]
        by_age.append({"age": label, "posts": len(members),
                       "median_interval_s": statistics.median(intervals) if intervals else None})
    mismatched = []
    for r in rows:
        wanted = expected_interval(r)
        if wanted is not None and r.status == "ok" and abs(r.interval_s - wanted) > max(1.0, 0.01 * wanted):
            mismatched.append((r, wanted))
    return {
        "posts": total, "horizon_s": horizon, "bucket_s": BUCKET_S, "read_at": now.isoformat(),
        "next_due_null": null, "overdue": overdue, "beyond_horizon": beyond, "within_horizon": len(within),
        "buckets": counts, "bucket_mean": mean, "max_over_mean": max(counts) / mean if mean else None,
        "min_over_mean": min(counts) / mean if mean else None,
        "busiest_5min": busiest, "busiest_5min_starts_in_s": round(busiest_at, 1),
        "busiest_5min_share": busiest / total if total else None,
        "uniform_5min_share": WINDOW_S / horizon,
        "uniform_reference": uniform_reference(len(within), horizon),
        "spread_fraction_quantiles": dict(zip(("min", "p10", "p25", "p50", "p75", "p90", "max"), deciles)),
        "interval_classes": classes, "by_age": by_age,
        "pace_mismatches": len(mismatched),
        "pace_mismatch_examples": [{"interval_s": r.interval_s, "expected_s": round(w, 1), "streak": r.streak,
                                    "published": r.published and r.published.isoformat(),
                                    "last_check": r.last_check and r.last_check.isoformat()}
                                   for r, w in mismatched[:5]],
    }


# --------------------------------------------------------------------------
# The benchmark
# --------------------------------------------------------------------------

def _line(text: str, pattern: str) -> str | None:
    match = re.search(pattern, text, re.MULTILINE)
    return match.group(0).strip() if match else None


def benchmark(root: Path, posts: int, daemon_seconds: float, robots: bool, publish: bool, log) -> dict:
    nginx = static_server.find_nginx()
    site, work, state = root / "site", root / "work", root / "nginx"
    logs = work / "logs"
    for directory in (site, logs, state):
        directory.mkdir(parents=True, exist_ok=True)
    monitor = [sys.executable, "-m", "monitor"]
    env = child_env()
    warnings: list[str] = []

    with static_server.NginxServer(nginx, site, state, types=EXTRA_TYPES) as server:
        log(f"nginx serving on {server.base_url}")
        now = dt.datetime.now(dt.timezone.utc)
        log(f"generating {posts} posts ...")
        started = time.perf_counter()
        blog = write_blog(site, server.base_url, posts, now, log)
        log(f"generated in {time.perf_counter() - started:.1f} s")
        site_info = {"page_bytes": {"mean": statistics.mean(blog.page_bytes), "min": min(blog.page_bytes),
                                    "max": max(blog.page_bytes), "total": sum(blog.page_bytes)},
                     "published_from": blog.posts[0].published.isoformat(),
                     "published_to": blog.posts[-1].published.isoformat(),
                     "child_sitemaps": blog.child_sitemaps, "sitemap_bytes": blog.sitemap_bytes,
                     "feed_items": min(FEED_ITEMS, posts), "robots": robots}
        check_served(server, blog)
        config = write_config(work, blog, robots)
        cfg = ["--config", str(config)]

        # 1. Discovery alone.
        log("discovery (monitor sites --discover) ...")
        discovery = run_measured(monitor + ["sites", "--discover", *cfg], logs, "discovery", server,
                                 cwd=REPO_ROOT, env=env)
        found = post_counts(work)
        discovery_line = _line(discovery.stdout, rf"^{SITE}: [\d,]+ posts? listed.*$")
        log(f"discovery: {discovery.wall_s:.2f} s, {discovery.peak_rss_bytes / MB:.1f} MB, "
            f"{found['targets']} targets ({discovery_line})")
        if found["targets"] != posts:
            warnings.append(f"discovery created {found['targets']} targets for {posts} posts "
                            f"(monitor said: {discovery_line})")
        if re.search(r"^\s+error: |discovery error", discovery.stdout, re.MULTILINE):
            warnings.append("discovery reported errors: " + discovery.stdout.strip()[-1000:])

        # 2. The first check pass.
        log(f"first check pass (monitor check) over {found['targets']} posts ...")
        check = run_measured(monitor + ["check", *cfg], logs, "check", server, cwd=REPO_ROOT, env=env)
        after_check = post_counts(work)
        check_line = _line(check.stdout, r"^checked [\d,]+ targets?:.*$")
        log(f"check pass: {check.wall_s:.1f} s, {check.peak_rss_bytes / MB:.1f} MB ({check_line})")
        if after_check["with_version"] != found["targets"]:
            warnings.append(f"after the check pass {after_check['with_version']} of {found['targets']} "
                            f"posts have a version ({check_line})")

        # 3. The daemon: its discovery is made due; with --publish the blog has a new post by then.
        published = None
        if publish:
            post, changed = publish_post(site, server.base_url, blog, dt.datetime.now(dt.timezone.utc))
            published = {"url": server.base_url + post.path, "changed_files": changed}
            log(f"published {post.path}; changed: {', '.join(changed)}")
        make_discovery_due(work)
        before = site_row(work)
        daemon_start = dt.datetime.now(dt.timezone.utc)
        planned = due_before(work, daemon_start + dt.timedelta(seconds=daemon_seconds))
        log(f"daemon (monitor run) for {daemon_seconds:g} s ...")
        daemon = run_measured(monitor + ["run", *cfg], logs, "daemon", server, cwd=REPO_ROOT, env=env,
                              run_for=daemon_seconds, sample_every=1.0)
        after = site_row(work)
        daemon_checked = checked_since(work, daemon_start)
        daemon_discovered = after["discoveries"] - before["discoveries"]
        # Logged at INFO when it found new posts; a quiet discovery may be logged at DEBUG only.
        daemon_line = _line(daemon.stderr, rf"{SITE}: (?:[\d,]+ posts? listed|feeds and sitemaps unchanged).*$")
        log(f"daemon: peak {max(daemon.peak_rss_bytes, daemon.vm_hwm_bytes or 0) / MB:.1f} MB, "
            f"{daemon_checked} posts checked, {daemon_discovered} discoveries")
        if daemon_discovered < 1:
            warnings.append("the daemon did not run the site's discovery, though it was due")
        new_posts = re.match(rf"{SITE}: [\d,]+ posts? listed, ([\d,]+) new", daemon_line or "")
        if (publish and not new_posts) or (new_posts and int(new_posts.group(1).replace(",", "")) != (1 if publish else 0)):
            warnings.append(f"the daemon's discovery said {daemon_line!r}, expected "
                            f"{1 if publish else 0} new")
        if daemon_checked > planned + 5:
            warnings.append(f"the daemon checked {daemon_checked} posts where {planned} were due during its run "
                            f"(as stored before it started)")
        problems = re.findall(r"^.*(?:ERROR|Traceback).*$", daemon.stderr, re.MULTILINE)
        if problems:
            warnings.append(f"the daemon logged {len(problems)} error lines, first: {problems[0][:300]}")

    # 4. The spread of the next checks.
    read_at = dt.datetime.now(dt.timezone.utc)
    spread = spread_report(post_rows(work), read_at)
    if spread["pace_mismatches"]:
        warnings.append(f"{spread['pace_mismatches']} posts have an interval_s other than pace.py's rule "
                        f"gives (e.g. {spread['pace_mismatch_examples'][0]})")
    if spread["next_due_null"]:
        warnings.append(f"{spread['next_due_null']} posts have no next_due_at")

    daemon_peak = max(daemon.peak_rss_bytes, daemon.vm_hwm_bytes or 0)
    rss = [s for _, s in daemon.samples]
    started_rss = [s for t, s in daemon.samples if t >= 2.0] or rss     # past interpreter start-up

    def phase(m: Measured, **extra) -> dict:
        data = asdict(m)
        for key in ("samples", "stdout", "stderr", "vm_hwm_bytes"):
            data.pop(key)
        return {**data, **extra}

    return {
        "benchmark": "site_scale",
        "posts": posts,
        "site": site_info,
        "discovery": phase(discovery, targets_created=found["targets"], line=discovery_line),
        "check": phase(check, line=check_line, with_version=after_check["with_version"],
                       errors=after_check["errors"]),
        "daemon": phase(daemon, seconds=daemon_seconds, vm_hwm_bytes=daemon.vm_hwm_bytes,
                        peak_bytes=daemon_peak, posts_checked=daemon_checked, posts_due_in_run=planned,
                        published=published,
                        discoveries=daemon_discovered, discovery_line=daemon_line,
                        rss_samples_bytes=rss,
                        rss_at_2s_bytes=started_rss[0] if started_rss else None,
                        rss_median_bytes=statistics.median(started_rss) if started_rss else None,
                        rss_last_bytes=rss[-1] if rss else None),
        "spread": spread,
        "targets": [{"label": f"daemon peak RSS <= {DAEMON_RSS_LIMIT_MB} MB", "value": daemon_peak / MB,
                     "limit": DAEMON_RSS_LIMIT_MB, "unit": "MB",
                     "met": daemon_peak / MB <= DAEMON_RSS_LIMIT_MB}],
        "warnings": warnings,
    }


# --------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------

SPARK = " ▁▂▃▄▅▆▇█"


def _spark(counts: list[int]) -> str:
    top = max(counts) or 1
    return "".join(SPARK[round(c / top * (len(SPARK) - 1))] for c in counts)


def _mb(value: int | None) -> str:
    return "-" if value is None else f"{value / MB:.1f}"


def format_report(report: dict) -> str:
    site, spread = report["site"], report["spread"]
    discovery, check, daemon = report["discovery"], report["check"], report["daemon"]
    pages = site["page_bytes"]

    def req(value: int | None) -> str:
        return "-" if value is None else str(value)

    lines = [
        f"site scale benchmark: {report['posts']} posts, pages mean {pages['mean'] / 1000:.1f} KB "
        f"({pages['min'] / 1000:.1f}-{pages['max'] / 1000:.1f} KB, total {pages['total'] / MB:.1f} MB), "
        f"published {site['published_from'][:10]} .. {site['published_to'][:16]}",
        f"sources: sitemap index + {site['child_sitemaps']} gzipped child sitemaps "
        f"({site['sitemap_bytes'] / 1000:.0f} KB served), RSS feed of {site['feed_items']}; "
        f"robots = {str(site['robots']).lower()}",
        "",
        f"{'phase':<22} {'wall s':>8} {'peak RSS MB':>12} {'tree MB':>8} {'procs':>5} {'requests':>9}  result",
        f"{'discovery':<22} {discovery['wall_s']:>8.2f} {_mb(discovery['peak_rss_bytes']):>12} "
        f"{_mb(discovery['tree_peak_rss_bytes']):>8} {discovery['processes']:>5} "
        f"{req(discovery['requests']):>9}  {discovery['targets_created']} targets ({discovery['line']})",
        f"{'first check pass':<22} {check['wall_s']:>8.2f} {_mb(check['peak_rss_bytes']):>12} "
        f"{_mb(check['tree_peak_rss_bytes']):>8} {check['processes']:>5} {req(check['requests']):>9}  "
        f"{check['line']}",
        f"{'daemon (' + format(daemon['seconds'], 'g') + ' s, SIGTERM)':<22} {daemon['wall_s']:>8.2f} "
        f"{_mb(daemon['peak_bytes']):>12} {_mb(daemon['tree_peak_rss_bytes']):>8} {daemon['processes']:>5} "
        f"{req(daemon['requests']):>9}  {daemon['posts_checked']} posts checked "
        f"({daemon['posts_due_in_run']} were due in its time), "
        f"{daemon['discoveries']} discovery ({daemon['discovery_line'] or 'its result not logged at INFO'})",
        *([f"before the daemon, the blog published {daemon['published']['url']} (changed: "
           f"{', '.join(daemon['published']['changed_files'])})"] if daemon["published"] else []),
        f"daemon RSS: at 2 s {_mb(daemon['rss_at_2s_bytes'])} MB, median {_mb(daemon['rss_median_bytes'])} MB, "
        f"last {_mb(daemon['rss_last_bytes'])} MB; VmHWM before SIGTERM {_mb(daemon['vm_hwm_bytes'])} MB, "
        f"wait4 peak {_mb(daemon['peak_rss_bytes'])} MB",
        "daemon RSS per second (MB): " + " ".join(f"{s / MB:.0f}" for s in daemon["rss_samples_bytes"][:40])
        + (" ..." if len(daemon["rss_samples_bytes"]) > 40 else ""),
        "",
        f"next checks after the daemon stopped (read at {spread['read_at'][:19]}Z), over one max_interval "
        f"(24 h), hourly:",
        f"  {_spark(spread['buckets'])}  min {min(spread['buckets'])}, mean {spread['bucket_mean']:.1f}, "
        f"max {max(spread['buckets'])}",
        "  " + " ".join(str(c) for c in spread["buckets"]),
        f"  max/mean bucket {spread['max_over_mean']:.3f} (uniform random spread of the same posts: median "
        f"{spread['uniform_reference']['max_over_mean_median']:.3f}, p95 "
        f"{spread['uniform_reference']['max_over_mean_p95']:.3f})",
        f"  busiest 5 minutes: {spread['busiest_5min']} posts = {100 * spread['busiest_5min_share']:.2f}% "
        f"(starting {spread['busiest_5min_starts_in_s'] / 60:.0f} min from now; an even spread is "
        f"{100 * spread['uniform_5min_share']:.2f}%, uniform random median "
        f"{spread['uniform_reference']['busiest_5min_median']:.0f}, p95 "
        f"{spread['uniform_reference']['busiest_5min_p95']:.0f} posts)",
        f"  overdue at reading {spread['overdue']}, no next_due_at {spread['next_due_null']}, "
        f"beyond 24 h {spread['beyond_horizon']}",
        "  where the next check falls within the interval (0 = at once, 1 = a full interval later): "
        + ", ".join(f"{k} {v}" for k, v in spread["spread_fraction_quantiles"].items()),
        "",
        "pace (targets.interval_s): "
        + ", ".join(f"{label}: {n}" for label, n in spread["interval_classes"].items()),
        "  by age: " + "; ".join(
            f"{a['age']}: {a['posts']} posts" + (f", median {a['median_interval_s'] / 60:.0f} min"
                                                  if a["median_interval_s"] else "")
            for a in spread["by_age"]),
        f"  posts whose interval_s differs from pace.py's rule (age/24, x1.5 per unchanged check, "
        f"clamped to 5m..1d): {spread['pace_mismatches']}",
        "",
    ]
    width = max(len(t["label"]) for t in report["targets"])
    lines.append(f"{'target':<{width}} {'measured':>10} {'limit':>10}")
    for t in report["targets"]:
        lines.append(f"{t['label']:<{width}} {t['value']:>7.1f} {t['unit']} {t['limit']:>7.1f} {t['unit']}  "
                     f"{'PASS' if t['met'] else 'MISS'}")
    if report["posts"] != REFERENCE_POSTS:
        lines.append(f"note: the target was set for {REFERENCE_POSTS} posts; with {report['posts']} it is "
                     f"indicative only")
    lines += [f"warning: {w}" for w in report["warnings"]]
    return "\n".join(lines)


# --------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=REFERENCE_POSTS,
                        help="number of posts on the blog (default %(default)s)")
    parser.add_argument("--daemon-seconds", type=float, default=60.0,
                        help="how long `monitor run` runs before SIGTERM (default %(default)g)")
    parser.add_argument("--keep", type=Path, metavar="DIR",
                        help="build everything in DIR (must be empty or absent) and keep it")
    parser.add_argument("--robots", action="store_true",
                        help="obey robots.txt (robots = true; the blog's robots.txt allows everything)")
    parser.add_argument("--publish", action="store_true",
                        help="publish one new post (page, feed item, sitemap entry) before the daemon starts, "
                             "so its discovery sees changed sources")
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    args = parser.parse_args(argv)
    if args.posts < FEED_ITEMS:
        parser.error(f"--posts must be at least {FEED_ITEMS}")
    if args.daemon_seconds < 5:
        parser.error("--daemon-seconds must be at least 5")
    if args.keep and args.keep.exists() and any(args.keep.iterdir()):
        parser.error(f"--keep directory {args.keep} is not empty")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if static_server.find_nginx() is None:
        print("nginx not found (looked on PATH and at /usr/sbin/nginx); it is needed to serve "
              "the blog. Install it, e.g. the Debian package nginx-light, and retry.", file=sys.stderr)
        return 2
    if not sys.platform.startswith("linux"):
        print("this benchmark reads /proc for the daemon's memory: it runs on Linux only", file=sys.stderr)
        return 2

    def log(message: str) -> None:
        if not args.json:
            print(message, file=sys.stderr, flush=True)

    root = args.keep or Path(tempfile.mkdtemp(prefix="monitor-site-scale-"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        report = benchmark(root.resolve(), args.posts, args.daemon_seconds, args.robots, args.publish, log)
    except (HarnessError, static_server.ServerError, sqlite3.Error) as error:
        print(f"benchmark harness failed: {error}", file=sys.stderr)
        if args.keep:
            print(f"logs are in {args.keep / 'work' / 'logs'}", file=sys.stderr)
        return 1
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    if not args.json:
        print(format_report(report))
    print(json.dumps(report, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
