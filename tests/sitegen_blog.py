"""A whole local blog for the tests: posts over time, an RSS feed and an Atom feed of the newest
posts, and a sitemap index whose child sitemap is gzipped. Served by the tests' PageServer."""
from __future__ import annotations

import gzip
import html
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from conftest import Page

NOW = datetime.now(timezone.utc).replace(microsecond=0)


@dataclass
class Post:
    slug: str
    title: str
    paragraphs: list[str]
    published: datetime
    status: int = 200
    moved_to: str | None = None  # slug it redirects to (301)


@dataclass
class Blog:
    server: object
    posts: dict[str, Post] = field(default_factory=dict)
    feed_size: int = 3             # a feed lists only the newest posts, like real ones
    in_feed: set[str] | None = None  # or exactly these

    def url(self, path: str) -> str:
        return self.server.url(path)

    def path(self, slug: str) -> str:
        return f"/blog/{slug}/"

    def add(self, slug: str, title: str, paragraphs: list[str], days_ago: float = 0.0) -> Post:
        post = Post(slug, title, paragraphs, NOW - timedelta(days=days_ago))
        self.posts[slug] = post
        self.publish()
        return post

    def listed(self) -> list[Post]:
        live = [p for p in self.posts.values() if p.status == 200 and p.moved_to is None]
        live.sort(key=lambda p: p.published, reverse=True)
        if self.in_feed is not None:
            return [p for p in live if p.slug in self.in_feed]
        return live[:self.feed_size]

    def page(self, post: Post) -> str:
        body = "".join(f"<p>{html.escape(p)}</p>" for p in post.paragraphs)
        return (f"<!doctype html><html><head><title>{html.escape(post.title)}</title>"
                f'<link rel="canonical" href="{self.url(self.path(post.slug))}"></head><body>'
                f"<nav><a href='/'>Home</a></nav><article><h1>{html.escape(post.title)}</h1>{body}</article>"
                f"<footer>© Example Corp</footer></body></html>")

    def rss(self) -> str:
        items = "".join(
            f"<item><title>{html.escape(p.title)}</title><link>{self.url(self.path(p.slug))}</link>"
            f"<pubDate>{p.published.strftime('%a, %d %b %Y %H:%M:%S +0000')}</pubDate></item>"
            for p in self.listed())
        return f'<?xml version="1.0"?><rss version="2.0"><channel><title>Blog</title>{items}</channel></rss>'

    def atom(self) -> str:
        entries = "".join(
            f"<entry><title>{html.escape(p.title)}</title><link rel='alternate' href='{self.path(p.slug)}'/>"
            f"<id>tag:example,{p.slug}</id><published>{p.published.isoformat()}</published>"
            f"<updated>{p.published.isoformat()}</updated></entry>"
            for p in self.listed())
        return (f'<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom" '
                f'xml:base="{self.url("/")}"><title>Blog</title><id>tag:example</id>'
                f"<updated>{NOW.isoformat()}</updated>{entries}</feed>")

    def sitemap(self) -> bytes:
        urls = "".join(f"<url><loc>{self.url(self.path(p.slug))}</loc>"
                       f"<lastmod>{p.published.date().isoformat()}</lastmod></url>"
                       for p in self.posts.values() if p.status == 200 and p.moved_to is None)
        xml = f'<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{urls}</urlset>'
        return gzip.compress(xml.encode())

    def sitemap_index(self) -> str:
        return ('<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
                f"<sitemap><loc>{self.url('/sitemap-posts.xml.gz')}</loc></sitemap></sitemapindex>")

    def publish(self) -> None:
        """Serve the current state of the blog."""
        s = self.server
        s.set("/feed/", Page(self.rss(), headers={"Content-Type": "application/rss+xml; charset=utf-8"}))
        s.set("/atom.xml", Page(self.atom(), headers={"Content-Type": "application/atom+xml"}))
        s.set("/sitemap.xml", Page(self.sitemap_index(), headers={"Content-Type": "application/xml"}))
        s.set("/sitemap-posts.xml.gz", Page(self.sitemap(), headers={"Content-Type": "application/gzip"}))
        for post in self.posts.values():
            path = self.path(post.slug)
            if post.moved_to:
                s.set(path, Page(b"", status=301, headers={"Location": self.path(post.moved_to)}))
            elif post.status != 200:
                s.set(path, Page("<html><body><h1>Not found</h1><p>Sorry.</p></body></html>", status=post.status))
            else:
                s.set(path, Page(self.page(post)))

    def requests_for(self, path: str) -> int:
        return sum(1 for p, _ in self.server.requests if p.split("?")[0] == path)
