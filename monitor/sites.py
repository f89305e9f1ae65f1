"""Discovery: read a site's feeds and sitemaps, and turn every post not yet watched into a target.

Fetching goes through the shared Fetcher (so robots.txt, per-host limits and back-off apply to
feeds and sitemaps as to posts), parsing through monitor/discover.py, writing through the store.
Posts that drop out of a feed are never removed: feeds list only recent posts, and deletions are
what this tool is for.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from . import discover
from .config import Post, Settings, Site
from .fetch import Fetcher
from .words import plural
from .models import utcnow
from .store import Store, TargetState

log = logging.getLogger("monitor.sites")

MAX_CHILD_SITEMAPS = 1000   # children of one sitemap index that are read
MAX_DEPTH = 2               # an index of indexes of sitemaps, no deeper
NEW_POST_DELAY = 10.0       # seconds a new URL waits while posts that just left a feed are re-checked
MAX_REMEMBERED = 1000       # URLs of a feed remembered to tell which posts left it


@dataclass
class Discovery:
    site: str
    found: int = 0                  # post URLs listed by the site's feeds and sitemaps (after include/exclude)
    unchanged: int = 0              # documents that answered 304 Not Modified
    adopted: int = 0                # targets no longer watched that this site lists: taken over
    new: list[int] = field(default_factory=list)   # ids of the targets created
    skipped_robots: int = 0
    skipped_hosts: int = 0          # URLs (posts or child sitemaps) on hosts that are not the site's
    errors: list[str] = field(default_factory=list)
    busy: bool = False              # not run: another process is discovering the site now

    def line(self) -> str:
        if self.busy:
            return f"{self.site}: being discovered by another process"
        if not self.found and self.unchanged and not self.errors and not self.skipped_hosts:
            return f"{self.site}: feeds and sitemaps unchanged"
        text = f"{self.site}: {plural(self.found, 'post')} listed, {len(self.new):,} new"
        if self.adopted:
            text += f", {self.adopted} watched again (with their history)"
        if self.skipped_robots:
            text += f", {self.skipped_robots} not watched (robots.txt)"
        if self.skipped_hosts:
            text += f", skipped {plural(self.skipped_hosts, 'URL')} on other hosts"
        return text + "".join(f"\n  error: {e}" for e in self.errors)


def _key(site: Site) -> str:
    """What decides which listed URLs become posts: when it changes, every document is read whole
    again (no conditional request), so posts it now lets in are found."""
    return hashlib.sha256(json.dumps([site.include, site.exclude, site.robots]).encode()).hexdigest()[:16]


class Scope:
    """Which listed URLs may become the site's posts: those on the hosts of its own feeds and
    sitemaps (www. or not), and those an include pattern that spells out a host ("://") admits;
    a third party's feed or sitemap cannot make us watch, or fetch, anyone else's pages. Child
    sitemaps must be on the site's hosts."""

    def __init__(self, site: Site):
        self.site = site
        self.hosts = {discover.site_host(discover.canonical(url)) for url in site.feeds + site.sitemaps}
        self.named = [pattern for pattern in site.include if "://" in pattern]

    def on_site(self, url: str) -> bool:
        return discover.site_host(url) in self.hosts

    def post(self, url: str) -> bool:
        return self.on_site(url) or (bool(self.named) and discover.matches(url, self.named, []))


class _Reader:
    """Reads one site's documents for one discovery, collecting post URLs, errors and what is
    remembered per document for the next time (ETag, Last-Modified, a sitemap index's children).
    Parsing runs in a worker thread, so a 50,000-URL sitemap does not hold up the daemon's checks."""

    def __init__(self, fetcher: Fetcher, site: Site, sources: dict, result: Discovery, allow_private: bool = False):
        self.fetcher, self.site, self.sources, self.result = fetcher, site, sources, result
        self.allow_private = allow_private  # the site's address policy (monitor/addresses.py)
        self.scope = Scope(site)
        self.found: dict[str, datetime | None] = {}   # in scope and passing include/exclude
        self.offsite: set[str] = set()
        self.left: set[str] = set()

    def take(self, urls: list[tuple[str, datetime | None]]) -> None:
        for url, when in urls:
            if not discover.matches(url, self.site.include, self.site.exclude):
                continue
            if self.scope.post(url):
                self.found.setdefault(url, when)
            else:
                self.offsite.add(url)

    async def document(self, url: str) -> bytes | None:
        """A feed or sitemap's bytes, or None when unchanged since last time (304). Raises
        DiscoveryError, naming the document, when it cannot be fetched."""
        known = self.sources.get(url, {})
        if known.get("key") != _key(self.site):
            known = {}
        fetched = await self.fetcher.fetch(url, etag=known.get("etag"), last_modified=known.get("last_modified"),
                                           robots=self.site.robots, document=True, origins=self.site.origins,
                                           allow_private=self.allow_private)
        if fetched.error or not fetched.ok:
            raise discover.DiscoveryError(f"{url}: {fetched.error or f'HTTP {fetched.status}'}")
        entry = self.sources.setdefault(url, {})
        entry.update(etag=fetched.headers.get("etag"), last_modified=fetched.headers.get("last-modified"),
                     key=_key(self.site), error=None)
        if fetched.not_modified:
            self.result.unchanged += 1
            return None
        return fetched.body

    async def feed(self, url: str) -> None:
        body = await self.document(url)
        if body is not None:
            entries = await asyncio.to_thread(self._feed, body, url)
            listed = [entry.url for entry in entries][:MAX_REMEMBERED]
            # Posts this feed listed last time and no longer does: with a new post beside them,
            # one of them may be that post at its old URL.
            self.left.update(set(self.sources[url].get("listed", [])) - set(listed))
            self.sources[url].update(urls=len(entries), listed=listed)

    def _feed(self, body: bytes, url: str) -> list[discover.Entry]:
        entries = discover.parse_feed(body, url)
        self.take([(entry.url, entry.published or entry.updated) for entry in entries])
        return entries

    async def sitemap(self, url: str, depth: int = 0) -> None:
        body = await self.document(url)
        if body is None:
            # An unchanged index may still have children that changed (new posts go into the
            # newest child sitemap): those are asked again, conditionally.
            children = self.sources[url].get("children", [])
        else:
            parsed = await asyncio.to_thread(self._sitemap, body, url)
            self.sources[url]["urls"] = len(parsed.urls)
            children = [c for c in parsed.sitemaps if self.scope.on_site(c)]
            self.offsite.update(c for c in parsed.sitemaps if not self.scope.on_site(c))
            children = children[:MAX_CHILD_SITEMAPS]
            self.sources[url]["children"] = children
        if children and depth >= MAX_DEPTH:
            raise discover.DiscoveryError(f"sitemap {url}: sitemap indexes nested deeper than {MAX_DEPTH}")
        for i, child in enumerate(children):
            if len(self.found) > self.site.max_posts:  # what is read is held in memory: stop here
                raise discover.DiscoveryError(
                    f"sitemap {url}: {len(children) - i} child sitemaps not read: more than {self.site.max_posts:,} "
                    f"posts listed already (max_posts of site {self.site.name})")
            await self.read(self.sitemap, child, depth + 1)  # one broken child costs its own posts only

    def _sitemap(self, body: bytes, url: str) -> discover.Sitemap:
        parsed = discover.parse_sitemap(body, url)
        self.take(parsed.urls)
        return parsed

    async def read(self, how, url: str, *args) -> None:
        try:
            await how(url, *args)
        except discover.DiscoveryError as exc:
            self.result.errors.append(str(exc))
            self.sources.setdefault(url, {})["error"] = str(exc)


ROBOTS_YIELD_EVERY = 1000  # URLs checked against robots.txt between turns given to the event loop


async def _allowed(fetcher: Fetcher, site: Site, urls: list[str], room: int, result: Discovery) -> list[str]:
    """The first `room` of urls that robots.txt lets us fetch (all of them without `robots`);
    those blocked are counted in result."""
    if not site.robots:
        return urls[:room]
    allowed = []
    for i, url in enumerate(urls):
        if len(allowed) >= room:
            break
        if await fetcher.allowed(url, origins=site.origins):
            allowed.append(url)
        else:
            result.skipped_robots += 1
        if i % ROBOTS_YIELD_EVERY == ROBOTS_YIELD_EVERY - 1:
            await asyncio.sleep(0)
    return allowed


def _unwatched(store: Store, site_id: int, listed: dict) -> tuple[list[str], list[int], int]:
    """Of the listed URLs: those no target has (new posts), the ids of targets no longer watched
    that have one (to adopt); and how many posts the site holds."""
    known = store.known_urls()
    fresh = [url for url in listed if url not in known]
    adopt = sorted({known[url][0] for url in listed if url in known and not known[url][1]})
    return fresh, adopt, store.post_counts().get(site_id, {}).get("posts", 0)


def _names(settings: Settings, store: Store, site: Site, urls: list[str]) -> dict[str, str]:
    names = discover.Names(store.target_names() | {t.name for t in settings.targets})
    return {url: names.unique(discover.name_base(site.name, url)) for url in urls}


async def discover_site(settings: Settings, store: Store, fetcher: Fetcher, site: Site,
                        at: datetime | None = None) -> Discovery:
    """One discovery of one site: read every feed and sitemap, add the posts not yet watched (up
    to the site's max_posts). The work that grows with the number of URLs runs in a worker
    thread, in time linear in that number."""
    at = at or utcnow()
    row = store.site_row(site.name)
    sources: dict = {url: dict(v) for url, v in (row.sources or {}).items()} if row else {}
    result = Discovery(site.name)
    reader = _Reader(fetcher, site, sources, result, settings.monitor.address_policy(site).allow_private)
    for url in site.feeds:
        await reader.read(reader.feed, url)
    for url in site.sitemaps:
        await reader.read(reader.sitemap, url)
    listed = reader.found
    result.found, result.skipped_hosts = len(listed), len(reader.offsite)
    row = row or store.site_row(site.name)
    fresh, adopt, held = await asyncio.to_thread(_unwatched, store, row.id, listed)
    room = max(site.max_posts - held, 0)
    adopt = adopt[:room]
    allowed = await _allowed(fetcher, site, fresh, room - len(adopt), result)
    not_added = len(fresh) - len(allowed) - result.skipped_robots
    if not_added:
        result.errors.append(f"site {site.name} holds its limit of {site.max_posts:,} posts (max_posts): "
                             f"{not_added:,} new URLs not added")
    result.adopted = len(adopt)
    names = await asyncio.to_thread(_names, settings, store, site, allowed)
    error = "; ".join(result.errors) or None
    first = row.discoveries == 0  # nothing can have moved yet: check at once
    result.new = await asyncio.to_thread(
        store.record_discovery, row.id, found=list(listed.items()), names=names, sources=sources, error=error, at=at,
        next_at=at + timedelta(seconds=site.discover_interval),
        new_due=at if first else at + timedelta(seconds=NEW_POST_DELAY), recheck=sorted(reader.left - set(listed)),
        adopt=adopt)
    return result


def due_sites(settings: Settings, store: Store, now: datetime) -> list[Site]:
    rows = {r.name: r for r in store.site_rows()}
    return [s for s in settings.sites
            if s.name not in rows or rows[s.name].next_discovery_at is None or rows[s.name].next_discovery_at <= now]


def posts(settings: Settings, states: list[TargetState], site_names: dict[int, str]) -> list[tuple[Post, TargetState]]:
    """The check pipeline's view of discovered posts: each with its site's settings."""
    out = []
    for state in states:
        site = settings.site(site_names.get(state.site_id, ""))
        if site is not None:
            out.append((Post.of(site, state.name, state.url, state.published_at), state))
    return out


def post_named(settings: Settings, store: Store, name: str) -> Post | None:
    """A discovered post by target name, with its site's settings; None if there is none."""
    state = store.state(name)
    if state is None or state.site_id is None:
        return None
    found = posts(settings, [state], store.site_names())
    return found[0][0] if found else None
