"""`monitor add`: put one page ([[targets]]) or one blog ([[sites]]) into targets.toml.

The user's file is never rewritten: the new entry is appended at its end, so every byte before it
(comments, spacing, quoting, key order) stays as it was. The file is replaced atomically (a temp
file in the same folder, then os.replace) with its mode kept, and loaded again afterwards; if the
result does not load, the original bytes are put back.

The pieces are small: finding feed links in a home page and Sitemap: lines in a robots.txt, naming
an entry, and appending it to the TOML text are pure functions; add() strings them together.
"""
from __future__ import annotations

import asyncio
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import tomlkit
from tomlkit.exceptions import TOMLKitError
from tomlkit.items import AoT

from . import config as config_module
from .files import write_atomic
from .words import plural
from .discover import DiscoveryError, Names, absolute, canonical, head_links, name_for, parse_feed, parse_sitemap

# <link rel="alternate"> types that are feeds monitor reads (JSON Feed is not one of them).
FEED_TYPES = ("application/rss+xml", "application/atom+xml")
# Where blog engines put their feeds and sitemaps (WordPress, Ghost, Hugo, Jekyll, Yoast, …).
PROBE_PATHS = ("/feed", "/rss.xml", "/atom.xml", "/index.xml", "/feed.xml", "/sitemap.xml", "/sitemap_index.xml")
MAX_TARGET_NAME = 120
MAX_SITE_NAME = 60          # config.Site's limit
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class AddError(Exception):
    """`monitor add` could not add the entry; the file is unchanged. exit_code is the CLI's."""

    exit_code = 2


class Refused(AddError):
    """A bad config, a taken name, a URL already watched, a result that does not load."""


class NothingFound(AddError):
    """--site found neither a feed nor a sitemap."""

    exit_code = 1


# ---- detection (pure) ------------------------------------------------------------------------------

def _is_comments_feed(url: str) -> bool:
    return "comments" in urlsplit(url).path.lower().split("/")


def feeds_in_html(body: bytes, base_url: str) -> list[str]:
    """The RSS and Atom feeds a page links in its <head> with <link rel="alternate">, as canonical
    absolute URLs (relative hrefs resolve against <base href>, then base_url), in page order.

    A comments feed (WordPress's /comments/feed/) is left out when the page links another feed:
    its entries are the same posts again, once per comment.
    """
    found: list[str] = []
    for rel, kind, url in head_links(body, base_url):
        if "alternate" in rel and kind in FEED_TYPES and url not in found:
            found.append(url)
    posts = [url for url in found if not _is_comments_feed(url)]
    return posts or found


def sitemaps_in_robots(text: str, robots_url: str) -> list[str]:
    """The `Sitemap:` lines of a robots.txt (any case, comments dropped), canonical, in order."""
    found: list[str] = []
    for line in text.splitlines():
        key, sep, value = line.split("#", 1)[0].partition(":")
        url = absolute(value, robots_url) if sep and key.strip().lower() == "sitemap" else None
        if url and url not in found:
            found.append(url)
    return found


def classify(body: bytes, url: str) -> str | None:
    """"feed", "sitemap", or None for a document that is neither."""
    try:
        parse_feed(body, url)
        return "feed"
    except DiscoveryError:
        pass
    try:
        parse_sitemap(body, url)
        return "sitemap"
    except DiscoveryError:
        return None


# ---- names (pure) ---------------------------------------------------------------------------------

def _host_slug(url: str) -> str:
    host = (urlsplit(canonical(url)).hostname or "").removeprefix("www.")
    return _UNSAFE.sub("-", host).strip("-._")


def _unique(base: str, taken: set[str], limit: int) -> str:
    """base, or base-2, base-3, … : not in taken (ignoring case, as discover.name_for does)."""
    return Names(taken).unique(base, limit)


def target_name(url: str, taken: set[str]) -> str:
    """A page's name: its host (no "www.") then its path, as discover.name_for makes a post's.
    "https://www.example.com/about/team" -> "example.com-about-team"; a home page is the host."""
    host = _host_slug(url) or "page"
    parts = urlsplit(canonical(url))
    if parts.path == "/" and not parts.query:
        return _unique(host, taken, MAX_TARGET_NAME)
    return name_for(host, url, taken)


def site_name(url: str, taken: set[str]) -> str:
    """A blog's name: its host without "www." ("https://www.example.com/" -> "example.com")."""
    return _unique(_host_slug(url) or "site", taken, MAX_SITE_NAME)


# ---- the TOML text (pure) -------------------------------------------------------------------------

def append_entry(text: str, table: str, entry: dict) -> str:
    """targets.toml's text with one more [[table]] entry (table is "targets" or "sites").

    The entry is appended after the last line, so the text before it is kept byte for byte (a
    [[table]] header at the end of a file adds to that array of tables wherever its other entries
    are). Only a file that wrote the array inline (`targets = [...]`) is edited in place, by
    tomlkit. Lists of more than one item are written one item per line; the file's line ending
    (\\n or \\r\\n) is kept. Raises tomlkit's ParseError for text that is not TOML.
    """
    doc = tomlkit.parse(text)
    item = tomlkit.table()
    for key, value in entry.items():
        if isinstance(value, list):
            array = tomlkit.array()
            array.extend(value)
            item[key] = array.multiline(len(value) > 1)
        else:
            item[key] = value
    existing = doc.get(table)
    if existing is not None and not isinstance(existing, AoT):
        inline = tomlkit.inline_table()
        inline.update(entry)
        existing.append(inline)
        return tomlkit.dumps(doc)
    block = tomlkit.document()
    block.append(table, tomlkit.aot())
    block[table].append(item)
    newline = "\r\n" if "\r\n" in text else "\n"
    added = tomlkit.dumps(block).replace("\n", newline)
    if text and not text.endswith("\n"):
        text += newline
    if text.strip() and not text.endswith(newline * 2):
        text += newline     # a blank line between the last entry and the new one
    return text + added


# ---- the file ---------------------------------------------------------------------------------------

def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise Refused(f"{path}: cannot read config: {exc.strerror}") from None


def _new_file_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def save(path: Path, original: bytes | None, new: bytes) -> None:
    """Write new over original (None: the file did not exist), then prove it loads; if it does
    not, put the original back and raise Refused with the loader's message."""
    real = Path(os.path.realpath(path))         # a symlinked targets.toml stays a symlink
    if _read(real) != original:
        raise Refused(f"{path} changed while monitor was editing it; nothing written, run it again")
    mode = _new_file_mode() if original is None else stat.S_IMODE(real.stat().st_mode)
    try:
        write_atomic(real, new, mode)
    except OSError as exc:
        raise Refused(f"{path}: cannot write config: {exc.strerror or exc}") from None
    try:
        config_module.load(path)
    except config_module.ConfigError as exc:
        if original is None:
            real.unlink(missing_ok=True)
        else:
            write_atomic(real, original, mode)
        raise Refused(f"{exc}\n(the change was not kept: {path} is unchanged)") from None


# ---- detection (network) ----------------------------------------------------------------------------

@dataclass
class Found:
    feeds: list[str] = field(default_factory=list)
    sitemaps: list[str] = field(default_factory=list)
    tried: list[str] = field(default_factory=list)      # what was looked at, for the "nothing found" message


def _problem(result) -> str:
    return result.error or f"HTTP {result.status}"


async def detect(url: str, settings: config_module.MonitorSettings) -> Found:
    """A blog's feeds and sitemaps: <link rel="alternate"> feeds in its home page, then the
    Sitemap: lines of its host's robots.txt, then, only if those found nothing, the PROBE_PATHS
    that answer with a document parse_feed or parse_sitemap accepts."""
    from .fetch import Fetcher

    found = Found()
    async with Fetcher(settings) as fetcher:
        home = await fetcher.fetch(url)
        if home.status is None:         # no answer at all: the rest would fail the same way
            found.tried.append(f"the home page {url}: {_problem(home)}")
            return found
        base = home.final_url or url
        if not home.ok:
            found.tried.append(f"the home page {url}: {_problem(home)}")
        elif (kind := classify(home.body, base)) is not None:      # the URL is itself a feed or sitemap
            (found.feeds if kind == "feed" else found.sitemaps).append(canonical(base))
        else:
            found.feeds = feeds_in_html(home.body, base)
            if not found.feeds:
                found.tried.append(f'the home page {url}: no <link rel="alternate"> to an RSS or Atom feed')

        robots_url = urljoin(base, "/robots.txt")
        robots = await fetcher.fetch(robots_url)
        sitemaps = sitemaps_in_robots(robots.text, robots_url) if robots.ok else []
        found.sitemaps += [s for s in sitemaps if s not in found.sitemaps]
        if not sitemaps:
            found.tried.append(f"{robots_url}: {'no Sitemap: lines' if robots.ok else _problem(robots)}")

        if not found.feeds and not found.sitemaps:
            probes = await asyncio.gather(*(fetcher.fetch(urljoin(base, p)) for p in PROBE_PATHS))
            for result in probes:
                if not result.ok or not result.body:
                    continue
                final = canonical(result.final_url or result.url)
                kind = classify(result.body, final)
                if kind is not None:
                    listed = found.feeds if kind == "feed" else found.sitemaps
                    if final not in listed:
                        listed.append(final)
            if not found.feeds and not found.sitemaps:
                found.tried.append(f"{urljoin(base, PROBE_PATHS[0])}, {', '.join(PROBE_PATHS[1:])}: "
                                   f"none is a feed or a sitemap")
    return found


LOOK_TIMEOUT = 15.0  # seconds `monitor add` gives a new page over HTTP (twice that in the browser)
# The browser is suggested when a page rendered shows at least this many more watched words, and at
# least twice as many, as its HTML alone: the article is written by its scripts.
MORE_WORDS = 50


def _words(html: str, url: str) -> int:
    from .extract import ExtractError, extract

    try:
        return extract(html, url=url).word_count
    except ExtractError:
        return 0


async def look(url: str, settings: config_module.MonitorSettings) -> str | None:
    """A note on a page just added as a target: when the page rendered in a browser shows its
    text and its HTML alone does not (see MORE_WORDS), a suggestion to set fetcher = "browser".
    None when there is nothing to say (or the page could not be fetched: its first check will
    tell). Fetches the page once over HTTP, and renders it when that found few words."""
    from .browser import renderer
    from .fetch import Fetcher

    settings = settings.model_copy(update={"timeout": min(settings.timeout, LOOK_TIMEOUT), "retries": 0,
                                           "browser_timeout": min(settings.browser_timeout, 2 * LOOK_TIMEOUT)})
    async with Fetcher(settings) as fetcher:
        plain = await fetcher.fetch(url)
        if not plain.ok or plain.not_modified:
            return None
        words = _words(plain.text, plain.final_url or url)
        if words >= MORE_WORDS:
            return None
        rendered = await renderer(fetcher).fetch(url, screenshot=False)
    if not rendered.ok:
        return None
    shown = _words(rendered.text, rendered.final_url or url)
    if shown < max(2 * words, words + MORE_WORDS):
        return None
    return (f"note: over HTTP the page shows {plural(words, 'word') if words else 'no text'}, rendered in a "
            f'browser {plural(shown, "word")}: add fetcher = "browser" to its entry to watch what readers see')


# ---- the command ------------------------------------------------------------------------------------

def _canonical(url: str) -> str | None:
    try:
        return canonical(url)
    except DiscoveryError:
        return None


def add(path: Path, url: str, *, site: bool = False, name: str | None = None, offline: bool = False) -> str:
    """Add url to the config at path as a target (or, with site, as a blog whose feeds and
    sitemaps are detected now); return what was added, for the user. A target's page is then
    looked at once (see look()) unless `offline`. Raises AddError."""
    url = url.strip()
    original = _read(path)
    settings = None
    if original is not None:
        try:
            settings = config_module.load(path)
        except config_module.ConfigError as exc:
            raise Refused(f"{exc}\n(fix the file first: {path} is unchanged)") from None
    wanted = _canonical(url)
    if wanted is None:
        raise Refused(f"not a web address: {url!r} (give it with http:// or https://)")
    targets = settings.targets if settings else []
    sites = settings.sites if settings else []
    owners = {t.name: f"target {t.name!r}" for t in targets} | {s.name: f"site {s.name!r}" for s in sites}
    if name is not None and name in owners:
        raise Refused(f"{path}: the name {name!r} is already taken by {owners[name]}; nothing changed "
                      f"(choose another with --name)")

    if not site:
        for target in targets:
            if _canonical(target.url) == wanted:
                raise Refused(f"{path}: {url} is already watched by target {target.name!r}; nothing changed")
        table = "targets"
        entry = {"name": name or target_name(url, set(owners)), "url": url}
        what = f'target "{entry["name"]}" ({url})'
    else:
        def watched_by(urls: list[str]) -> str | None:
            return next((f"{u} is already watched by site {s.name!r}" for u in urls for s in sites
                         if u in {_canonical(x) for x in s.feeds + s.sitemaps}), None)

        if clash := watched_by([wanted]):
            raise Refused(f"{path}: {clash}; nothing changed")
        monitor = settings.monitor if settings else config_module.MonitorSettings()
        found = asyncio.run(detect(url, monitor))
        if not found.feeds and not found.sitemaps:
            raise NothingFound(f"found no feed or sitemap for {url}; {path} is unchanged. Tried:\n  - "
                               + "\n  - ".join(found.tried)
                               + "\nIf the blog has them elsewhere, add a [[sites]] entry by hand with "
                                 "feeds = [...] or sitemaps = [...].")
        if clash := watched_by(found.feeds + found.sitemaps):
            raise Refused(f"{path}: {clash}; nothing changed")
        table = "sites"
        entry = {"name": name or site_name(url, set(owners)), "feeds": found.feeds, "sitemaps": found.sitemaps}
        counts = [plural(len(found.feeds), "feed")] if found.feeds else []
        counts += [plural(len(found.sitemaps), "sitemap")] if found.sitemaps else []
        what = f'site "{entry["name"]}" with {" and ".join(counts)}'

    try:
        text = append_entry((original or b"").decode("utf-8"), table, entry)
    except TOMLKitError as exc:      # tomllib accepted it; tomlkit did not
        raise Refused(f"{path}: cannot edit this file safely ({exc}); add the entry by hand") from None
    save(path, original, text.encode("utf-8"))
    lines = [f"added {what} to {path}" + (" (a new file)" if original is None else "")]
    if site:
        lines += [f"  feed     {u}" for u in entry["feeds"]] + [f"  sitemap  {u}" for u in entry["sitemaps"]]
    elif not offline:
        note = asyncio.run(look(url, settings.monitor if settings else config_module.MonitorSettings()))
        lines += [note] if note else []
    return "\n".join(lines)
