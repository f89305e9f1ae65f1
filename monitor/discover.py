"""Discover the posts of a blog from its RSS/Atom feeds and sitemaps.

Small pure functions: bytes in, results out. Nothing here touches the network, the disk or the
database; fetching the documents (and the first size cap) is the caller's job.

Every XML document goes through one hardened lxml parser first: entities are never expanded,
nothing is loaded over the network, no DTD is read. A document that declares entities or names an
external DTD is refused outright (the only exception is the public identifier of Netscape's
RSS 0.91 DTD, which old feeds carry; it is recognised by name and never fetched). Anything wrong
with a document is a DiscoveryError that names the document and the problem.
"""
from __future__ import annotations

import functools
import gzip
import hashlib
import html
import io
import re
import unicodedata
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from fnmatch import fnmatchcase
from typing import Iterable
from urllib.parse import SplitResult, quote, unquote, unquote_plus, urljoin, urlsplit, urlunsplit

import lxml.html
from lxml import etree

MAX_BYTES = 50_000_000      # a body, and a sitemap once decompressed (the sitemap protocol's 50 MB)
MAX_ENTRIES = 50_000        # URLs per sitemap, entries per feed (the sitemap protocol's limit)
MAX_URL_LENGTH = 2048       # the sitemap protocol's limit; longer URLs are skipped
MAX_NAME_LENGTH = 120

# Query parameters that only say where a visitor came from (or carry a session): dropped, so one
# post reached through differently tagged links is one URL. `sid` is deliberately absent: on some
# sites it is the story id itself.
TRACKING = re.compile(r"^(utm_\w+|fbclid|gclid|dclid|gbraid|wbraid|msclkid|mc_cid|mc_eid|_ga|_gl|igshid|yclid"
                      r"|ref_src|_hsenc|_hsmi|mkt_tok|spm|jsessionid|phpsessid|sessionid)$", re.I)
_DEFAULT_PORTS = {"http": 80, "https": 443}
_URL_SAFE = "/%:@!$&'()*+,;=-._~?"
_PERCENT = re.compile(r"%[0-9a-fA-F]{2}")
_ABSOLUTE = re.compile(r"https?://", re.I)   # urljoin() leaves these as they are
_HTML_START = re.compile(rb"^(?:<\?[^>]*>\s*|<!--.*?-->\s*)*<(?:!doctype\s+html|html[\s>])", re.I | re.S)
_TAG = re.compile(r"<[^>]*>")
_UTF8_BOM, _UTF16_BOMS = b"\xef\xbb\xbf", (b"\xff\xfe", b"\xfe\xff")
_SAFE_PUBLIC_IDS = {"-//Netscape Communications//DTD RSS 0.91//EN"}
_FEED_ROOTS = {"rss", "RDF", "feed"}
_GENERIC_SEGMENTS = {"blog", "blogs", "post", "posts", "p", "news", "article", "articles", "entry", "entries",
                     "archive", "archives", "story", "stories"}
_PAGE_SUFFIX = re.compile(r"\.(?:html?|shtml|php|aspx?|jsp)$", re.I)
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class DiscoveryError(Exception):
    """A feed or sitemap that cannot be used, worded for the user (it names the document)."""


@dataclass(frozen=True)
class Entry:
    url: str                        # absolute and canonical (see canonical())
    title: str
    published: datetime | None     # aware, UTC
    updated: datetime | None


@dataclass
class Sitemap:
    urls: list[tuple[str, datetime | None]] = field(default_factory=list)   # (canonical URL, lastmod)
    sitemaps: list[str] = field(default_factory=list)                        # children of a sitemap index


# ---- URLs -------------------------------------------------------------------------------------

def _quote(text: str) -> str:
    """Percent-encode what must be (spaces, non-ASCII) and upper-case existing escapes."""
    return _PERCENT.sub(lambda m: m.group().upper(), quote(text, safe=_URL_SAFE))


@functools.lru_cache(maxsize=1024)
def _netloc(scheme: str, netloc: str) -> str:
    """The host and port part as canonical() writes it ("" when there is no host); ValueError for
    a bad port. Cached: a sitemap's 50,000 URLs share one or two."""
    parts = SplitResult(scheme, netloc, "", "", "")
    port = parts.port
    host = (parts.hostname or "").rstrip(".")
    if not host:
        return ""
    try:
        host = host.encode("idna").decode("ascii")
    except UnicodeError:
        pass
    if ":" in host:
        host = f"[{host}]"
    return host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"


def canonical(url: str) -> str:
    """The one spelling of a URL, so that one post is never watched twice.

    Lower-case scheme and host (IDNA for non-ASCII hosts), no default port, no user info, no
    fragment, no tracking parameters, the query sorted, the path kept as given (an empty path
    becomes "/"). The scheme stays: http://x/a and https://x/a are different URLs to fetch.
    Raises DiscoveryError for anything that is not an absolute http(s) URL.
    """
    try:
        parts = urlsplit(url.strip())
        scheme = parts.scheme.lower()
        netloc = _netloc(scheme, parts.netloc) if scheme in _DEFAULT_PORTS else ""
    except ValueError:
        raise DiscoveryError(f"not a valid URL: {url[:200]!r}") from None
    if not netloc:
        raise DiscoveryError(f"not an absolute http(s) URL: {url[:200]!r}")
    query = sorted(_quote(p) for p in parts.query.split("&")
                   if p and not TRACKING.match(unquote_plus(p.split("=", 1)[0])))
    return urlunsplit((scheme, netloc, _quote(parts.path) or "/", "&".join(query), ""))


def absolute(href: str | None, base_url: str) -> str | None:
    """canonical(href resolved against base_url), or None for what is not a usable http(s) URL."""
    href = (href or "").strip()
    if not href or len(href) > MAX_URL_LENGTH:
        return None
    try:
        return canonical(href if _ABSOLUTE.match(href) else urljoin(base_url, href))
    except (DiscoveryError, ValueError):
        return None


_HEAD_END = re.compile(r"</head\s*>", re.I)
_HEAD_END_BYTES = re.compile(rb"</head\s*>", re.I)
_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")


def head_links(page: bytes | str, base_url: str) -> list[tuple[list[str], str, str]]:
    """Each <link href> in a page's <head>, in page order, as (rel tokens, type, URL): lower-case
    rel tokens and type (parameters dropped), the href resolved against <base href>, then
    base_url, and made canonical (links that are no usable http(s) URL are left out). Only the
    head is parsed, so this is cheap on a big page."""
    if isinstance(page, str):
        page = _XML_DECLARATION.sub("", page, count=1)  # lxml refuses a str that declares an encoding
    end = (_HEAD_END if isinstance(page, str) else _HEAD_END_BYTES).search(page)
    if end is not None:
        page = page[:end.start()]
    try:
        head = lxml.html.document_fromstring(page).find("head")
    except (etree.ParserError, ValueError):
        return []
    if head is None:
        return []
    base = next((urljoin(base_url, b.get("href").strip()) for b in head.iter("base") if b.get("href")), base_url)
    links = []
    for link in head.iter("link"):
        url = absolute(link.get("href"), base)
        if url is not None:
            links.append(((link.get("rel") or "").lower().split(),
                          (link.get("type") or "").split(";")[0].strip().lower(), url))
    return links


def canonical_link(page: bytes | str, page_url: str) -> str | None:
    """The page's <link rel=canonical>, when it is usable: on the page's own host and not the
    home page (which some sites name on every page) unless the page is the home page."""
    try:
        here = urlsplit(canonical(page_url))
    except DiscoveryError:
        return None
    url = next((url for rel, _, url in head_links(page, page_url) if "canonical" in rel), None)
    if url is None:
        return None
    there = urlsplit(url)
    if there.netloc != here.netloc or (there.path == "/" and here.path != "/"):
        return None
    return url


def site_host(url: str) -> str:
    """A canonical URL's host as a site's scope compares it: without a leading "www.", so that
    example.com and www.example.com are one site."""
    return (urlsplit(url).hostname or "").removeprefix("www.")


def matches(url: str, include: list[str], exclude: list[str]) -> bool:
    """Whether url passes the glob patterns (fnmatch, case-sensitive, `*` spans slashes).

    Patterns match the whole URL, so start them with the scheme or `*`:
    "https://example.com/blog/*", "*/2018/*". No include patterns means everything; an exclude
    pattern always wins.
    """
    if any(fnmatchcase(url, pattern) for pattern in exclude):
        return False
    return not include or any(fnmatchcase(url, pattern) for pattern in include)


def _slug(text: str) -> str:
    """ASCII letters, digits, . _ - only (accents dropped, everything else a hyphen)."""
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"-{2,}", "-", _NAME_UNSAFE.sub("-", text)).strip("-._")


def name_base(site: str, url: str) -> str:
    """What a discovered post's target name is made of: the site name, then the path of `url`
    (a canonical URL, see canonical()).

    ("msblog", "https://blogs.microsoft.com/blog/2018/01/24/federal-agencies-continue/") ->
    "msblog-2018-01-24-federal-agencies-continue". Generic segments ("blog", "posts", …) and page
    suffixes (".html", ".php", …) are left out; a query is kept ("?p=123" -> "p-123"). Only
    [A-Za-z0-9._-]; Names.unique() shortens it and makes it unique.
    """
    parts = urlsplit(url)
    segments = [unquote(s) for s in parts.path.split("/") if s]
    if segments:
        segments[-1] = _PAGE_SUFFIX.sub("", segments[-1])
        if segments[-1].lower() == "index" and len(segments) > 1:
            segments.pop()
    kept = [s for s in segments[:-1] if s.lower() not in _GENERIC_SEGMENTS] + segments[-1:]
    kept += [unquote_plus(p).replace("=", "-") for p in parts.query.split("&") if p]
    slug = _slug("-".join(kept)).lower() or (hashlib.sha256(url.encode()).hexdigest()[:10] if kept else "home")
    return _slug(f"{_slug(site) or 'site'}-{slug}")


class Names:
    """Hands out target names that are unique ignoring case, against the names taken so far and
    each other. Constant time per name, however many are taken or share a base (a hostile
    sitemap can list 50,000 URLs that make the same base): each base remembers its last suffix."""

    def __init__(self, taken: Iterable[str] = ()):
        self._taken = {name.lower() for name in taken}
        self._next: dict[str, int] = {}

    def unique(self, base: str, limit: int = MAX_NAME_LENGTH) -> str:
        """base cut to `limit` characters, or with -2, -3, … appended: not taken, and now taken."""
        name, n = base[:limit].rstrip("-._"), self._next.get(base, 1)
        if n > 1 or name.lower() in self._taken:
            while True:
                n += 1
                suffix = f"-{n}"
                name = base[:limit - len(suffix)].rstrip("-._") + suffix
                if name.lower() not in self._taken:
                    break
        self._next[base] = n
        self._taken.add(name.lower())
        return name


def name_for(site: str, url: str, taken: set[str]) -> str:
    """A target name for a discovered post (see name_base), unique against `taken` ignoring case.
    The caller adds the result to `taken`; for many names at once, use one Names instead."""
    return Names(taken).unique(name_base(site, canonical(url)))


# ---- documents ----------------------------------------------------------------------------------

def _xml_parser(recover: bool = False) -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False,
                           dtd_validation=False, attribute_defaults=False, remove_comments=True,
                           remove_pis=True, recover=recover)


def _unpack(body: bytes, what: str, max_bytes: int) -> bytes:
    """The body checked for size and, if gzipped (by magic bytes), decompressed up to max_bytes."""
    if len(body) > max_bytes:
        raise DiscoveryError(f"{what}: body is larger than {max_bytes:,} bytes")
    if body.startswith(b"\x1f\x8b"):
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(body)) as f:
                body = f.read(max_bytes + 1)    # streams: a gzip bomb stops here
        except (OSError, EOFError, zlib.error) as exc:
            raise DiscoveryError(f"{what}: broken gzip data ({exc})") from None
        if len(body) > max_bytes:
            raise DiscoveryError(f"{what}: larger than {max_bytes:,} bytes once decompressed")
    if not body.removeprefix(_UTF8_BOM).strip():
        raise DiscoveryError(f"{what}: empty body")
    # Stray blank lines before <?xml are a common feed bug (a UTF-16 body starts with its BOM).
    if body.startswith(_UTF16_BOMS):
        return body
    return (_UTF8_BOM if body.startswith(_UTF8_BOM) else b"") + body.removeprefix(_UTF8_BOM).lstrip()


def _is_markup(body: bytes) -> bool:
    return body.startswith(_UTF16_BOMS) or body.removeprefix(_UTF8_BOM).startswith(b"<")


def _parse_xml(body: bytes, what: str, kind: str) -> etree._Element:
    """Parse with the hardened parser; refuse entity declarations and external DTDs."""
    if _HTML_START.match(body.removeprefix(_UTF8_BOM)[:4096]):
        raise DiscoveryError(f"{what}: not a {kind} (HTML page?)")
    try:
        root = etree.fromstring(body, _xml_parser())
    except etree.XMLSyntaxError as exc:
        # libxml2 stops at an entity bomb before the DTD can be looked at: look again, leniently
        # (still expanding and fetching nothing), so that the message says why.
        try:
            _refuse_dtd(etree.fromstring(body, _xml_parser(recover=True)), what)
        except etree.XMLSyntaxError:
            pass
        raise DiscoveryError(f"{what}: not well-formed XML ({exc.msg})") from None
    if root is None:
        raise DiscoveryError(f"{what}: not well-formed XML (no root element)")
    _refuse_dtd(root, what)
    if etree.QName(root).localname.lower() == "html":
        raise DiscoveryError(f"{what}: not a {kind} (HTML page?)")
    return root


def _refuse_dtd(root: etree._Element | None, what: str) -> None:
    """Entity declarations (internal or external, general or parameter) and external DTDs."""
    if root is None:
        return
    docinfo = root.getroottree().docinfo
    dtd = docinfo.internalDTD
    if dtd is not None and any(True for _ in dtd.iterentities()):
        raise DiscoveryError(f"{what}: XML entity declarations are not allowed")
    if docinfo.system_url and docinfo.public_id not in _SAFE_PUBLIC_IDS:
        raise DiscoveryError(f"{what}: external DTDs are not allowed ({docinfo.system_url[:200]})")


def _utc(value: str | None) -> datetime | None:
    """A W3C datetime (2018, 2018-01, 2018-01-24, 2018-01-24T10:00:00+01:00, …Z) as aware UTC."""
    value = (value or "").strip()
    if len(value) in (4, 7):
        value += "-01" * ((10 - len(value)) // 3)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else parsed.astimezone(timezone.utc)


def _struct_utc(value) -> datetime | None:
    try:
        return datetime(*value[:6], tzinfo=timezone.utc) if value else None
    except (TypeError, ValueError):
        return None


def parse_feed(body: bytes, base_url: str, *, max_bytes: int = MAX_BYTES,
               max_entries: int = MAX_ENTRIES) -> list[Entry]:
    """The entries of an RSS 0.9x/1.0/2.0 or Atom feed, in feed order, one per canonical URL.

    Relative links resolve against xml:base, then base_url (the feed's own URL). An Atom entry's
    link is its rel="alternate" one. Entries without an http(s) link (or permalink guid) are skipped.
    """
    what = f"feed {base_url}"
    body = _unpack(body, what, max_bytes)
    if not _is_markup(body):
        raise DiscoveryError(f"{what}: not a feed (not XML)")
    root = _parse_xml(body, what, "feed")
    if etree.QName(root).localname not in _FEED_ROOTS:
        raise DiscoveryError(f"{what}: not a feed (root element <{etree.QName(root).localname}>)")
    count = sum(1 for _ in root.iter("{*}item", "{*}entry"))
    if count > max_entries:
        raise DiscoveryError(f"{what}: more than {max_entries:,} entries ({count:,})")
    import feedparser  # here, not at the top: every check imports this module for canonical()

    # A file object, never bytes: feedparser.parse() treats bytes that name a file as a path to open.
    parsed = feedparser.parse(io.BytesIO(body), response_headers={"content-location": base_url},
                              sanitize_html=False, resolve_relative_uris=False)
    entries: dict[str, Entry] = {}
    for item in parsed.entries:
        links = [l for l in item.get("links", []) if l.get("rel", "alternate") == "alternate"]
        href = next((l.get("href") for l in links if l.get("type", "text/html") == "text/html"), None)
        url = absolute(href or item.get("link") or (item.get("id") if item.get("guidislink") else None),
                        base_url)
        if url is None or url in entries:
            continue
        title = item.get("title", "")
        if item.get("title_detail", {}).get("type") == "text/html":
            title = html.unescape(_TAG.sub("", title))
        entries[url] = Entry(url=url, title=" ".join(title.split()),
                             published=_struct_utc(dict.get(item, "published_parsed")),
                             updated=_struct_utc(dict.get(item, "updated_parsed")))
    return list(entries.values())


def parse_sitemap(body: bytes, base_url: str, *, max_bytes: int = MAX_BYTES,
                  max_entries: int = MAX_ENTRIES) -> Sitemap:
    """The URLs of a sitemap (<urlset>), or the child sitemaps of a sitemap index (<sitemapindex>).

    Gzipped or not; XML, a plain-text list (one absolute URL per line, as the protocol allows), or
    an RSS/Atom feed (also allowed as a sitemap). URLs are canonical and each listed once; an XML
    <loc> that is not an http(s) URL is skipped, a text line that is not one makes the whole
    document an error (it is then not a sitemap at all, e.g. a plain-text error page).
    """
    what = f"sitemap {base_url}"
    body = _unpack(body, what, max_bytes)
    if not _is_markup(body):
        return _parse_text_sitemap(body, what, max_entries)
    root = _parse_xml(body, what, "sitemap")
    kind = etree.QName(root).localname
    if kind in _FEED_ROOTS:
        return Sitemap(urls=[(e.url, e.updated or e.published)
                             for e in parse_feed(body, base_url, max_bytes=max_bytes, max_entries=max_entries)])
    if kind not in ("urlset", "sitemapindex"):
        raise DiscoveryError(f"{what}: not a sitemap (root element <{kind}>)")
    if len(root) > max_entries:
        raise DiscoveryError(f"{what}: more than {max_entries:,} entries ({len(root):,})")
    found: dict[str, datetime | None] = {}
    for item in root.iterchildren("{*}url", "{*}sitemap"):
        url = absolute(item.findtext("{*}loc"), base_url)
        if url is not None and url not in found:
            found[url] = _utc(item.findtext("{*}lastmod"))
    if kind == "sitemapindex":
        return Sitemap(sitemaps=list(found))
    return Sitemap(urls=list(found.items()))


def _parse_text_sitemap(body: bytes, what: str, max_entries: int) -> Sitemap:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DiscoveryError(f"{what}: not a sitemap (neither XML nor UTF-8 text)") from None
    found: dict[str, None] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        url = None if any(c.isspace() for c in line) else absolute(line, "")   # absolute URLs only
        if url is None:
            raise DiscoveryError(f"{what}: not a sitemap (line {number} is not an absolute http(s) URL: "
                                 f"{line[:80]!r})")
        found[url] = None
        if len(found) > max_entries:
            raise DiscoveryError(f"{what}: more than {max_entries:,} entries")
    return Sitemap(urls=list(found.items()))
