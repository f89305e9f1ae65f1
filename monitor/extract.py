"""HTML -> the watched content as normalised text blocks, plus the page title.

One block per paragraph, heading, list item, table row, quote or caption, in document order;
link targets and image descriptions are part of the text (`words ⟨https://…⟩`, `[image: …]`),
so a changed link or a removed image is a change too.

The default scope is the page's main content. The container holding the most paragraph text is
found the way readability scores it (paragraphs in <div>s count; sibling sections holding
paragraphs too join it; it widens over a headline, a byline or more sections of prose, not over
link lists). The <article>, <main> or role=main holding it is the scope; one that does not hold
it is the scope only when it has at least half as much prose (an ad slot marked <main>, a share
bar marked <article> are not the article); else the container itself. The container chosen at a
target's first capture is pinned (a "scope" rule, see pin_rule) and reused, so an edit cannot
move the scope; it is chosen again only when the page no longer has it. Inside the scope,
page chrome is dropped: navigation, sidebars, footers, small forms, dialogs, hidden elements, and
elements whose class or id names them as chrome (share bars, related posts, comments, cookie
banners, ads, newsletter boxes, trending lists; camelCase names too), and lists of links (three
or more items, mostly link text: related, trending, read next). The article's own containers are
never dropped as chrome, whatever their names. Counters (views, shares, comments, claps…) and
relative times ("5 minutes ago") have their numbers masked. Learned volatile rules (see
monitor/volatile.py) mask or drop the blocks at the paths they name.

User rules are CSS: `selector` (what to watch) and `ignore` (what to drop) are matched with
beautifulsoup4 (soupsieve); `ignore_text` drops text by regular expression. The walk that turns
elements into blocks runs on lxml's tree, which parses a 50 KB page in about a millisecond —
every check of a page whose bytes changed has to extract it.

With explain=True, every block of the page is returned with the reason it is watched or ignored.
"""
from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import lxml.html
from lxml import etree

from . import words

# Bump when the text this module produces for the same page changes; stored with each version so
# a new extractor re-reads the previous capture instead of reporting its own change as an edit.
EXTRACTOR_VERSION = 5

BLOCK_TAGS = frozenset(
    "p h1 h2 h3 h4 h5 h6 li dt dd tr blockquote pre figcaption caption address summary legend "
    "div section article main aside header footer nav ul ol dl table tbody thead tfoot figure details body "
    "center hgroup search form td th".split()
)
CELL_TAGS = frozenset(("td", "th"))  # parts of their row's block, unless the table is layout
DROP_TAGS = frozenset(
    "script style noscript template svg math canvas iframe object embed head button select input textarea "
    "option datalist".split()
)
CHROME_TAGS = frozenset(("nav", "aside", "footer", "dialog"))
# Text elements are judged by where they sit, not by their class names (which generated CSS
# fills with short tokens like "ad" or "nav").
TEXT_TAGS = frozenset("p h1 h2 h3 h4 h5 h6 li dt dd blockquote pre figcaption caption td th".split())
# Inline elements are words of a sentence, whatever their class names say (a code sample's
# <span class="hljs-comment">, a link marked "external-popup").
INLINE_TAGS = frozenset("a span code em strong b i u s small big sup sub mark abbr cite q kbd samp var time "
                        "label font del ins dfn bdi bdo data wbr".split())
CHROME_ROLES = frozenset(("navigation", "banner", "contentinfo", "complementary", "search", "dialog"))
SMALL_FORM_WORDS = 60  # a form with more text than this is a page layout (ASP.NET), not a widget
CHROME_NAMES = re.compile(
    r"(?:^|[-_])(share\w*|sharing|social\w*|related|comments?|respond|newsletter|subscribe|subscription"
    r"|cookies?|consent|gdpr|banner|advert|advertisement|ad(?=[-_])|adslot|adsbygoogle|sponsored|promo|popular"
    r"|trending"
    r"|sidebar|breadcrumbs?|pagination|pager|navigation|navbar|nav|menu|masthead|toolbar|skip|signup|modal"
    r"|popup|disqus|claps?|reactions?|likes?|footer|calendar|bio|cta|cmp)(?:$|[-_\d])", re.I)
CONTENT_NAMES = re.compile(r"article|body|content|entry|main|page|post|text|blog|story|release|news", re.I)

_INVISIBLE = re.compile("[\u00ad\u200b\u200c\u200d\u2060\ufeff]")
_XML_DECL = re.compile(r"^\s*<\?xml[^>]*\?>")
_PARSER = lxml.html.HTMLParser(remove_comments=True, remove_pis=True)
MAX_ELEMENTS = 60_000
_COUNTER_WORDS = (r"min(?:ute)?s? read|views?|comments?|shares?|likes?|reads?|claps?|responses?|reactions?|retweets?|reposts?"
                  r"|followers?|subscribers?|votes?|visits?|visitors?|clicks?|points?|replies|reply|hits?|stars?|forks?"
                  r"|reviews?|ratings?|watchers?")
# "1,234 views", "169 total reviews" (a word may come between)
_COUNT_BEFORE = re.compile(rf"\b\d[\d,.]*(?:\s*[kKmM]\b)?(?=\s*(?:[a-z]+\s+)?(?:{_COUNTER_WORDS})\b)", re.I)
_COUNT_AFTER = re.compile(rf"\b((?:{_COUNTER_WORDS})\s*[:(]?\s*)\d[\d,.]*(?:\s*[kKmM]\b)?", re.I)
_RELATIVE_TIME = re.compile(r"\b\d+\s*(?:seconds?|secs?|minutes?|mins?|hours?|hrs?|days?|weeks?|months?|years?)"
                            r"\s+ago\b", re.I)
_TRACKING = re.compile(r"^(utm_\w+|fbclid|gclid|dclid|gbraid|wbraid|msclkid|mc_cid|mc_eid|_ga|_gl|igshid|yclid"
                       r"|ref_src|_hsenc|_hsmi|mkt_tok|spm|_wpnonce|sessionid|jsessionid|phpsessid|sid)$", re.I)
_FOLD = str.maketrans({"‘": "'", "’": "'", "‚": "'", "‛": "'", "“": '"', "”": '"', "„": '"', "‟": '"',
                       "′": "'", "″": '"', "–": "-", "—": "-", "―": "-", "‐": "-", "‑": "-", "−": "-",
                       "…": "...", "\u00a0": " "})


class ExtractError(Exception):
    """The page cannot give the content asked for (e.g. a selector matched nothing)."""


@dataclass
class Block:
    text: str
    path: str
    reason: str | None = None  # None: watched


@dataclass
class Extracted:
    title: str
    blocks: list[str]
    scope: str = "body"
    paths: list[str] = field(default_factory=list)
    explained: list[Block] = field(default_factory=list)
    pin: dict | None = None  # the scope rule that keeps this page's container (see pin_rule)
    repinned: str | None = None  # why the pinned container was chosen again

    @property
    def lines(self) -> list[str]:
        """The document the diff sees: the title first, then the blocks."""
        return ([self.title] if self.title else []) + self.blocks

    def text(self) -> str:
        """The stored form: title, a blank line, then one block per line."""
        return self.title + "\n\n" + "\n".join(self.blocks) + "\n"

    @property
    def word_count(self) -> int:
        """The words of the document the diff sees (title and blocks), counted as the diff counts."""
        return words.count("\n".join(self.lines))  # (a word never spans lines)


def parse_text(text: str) -> Extracted:
    """The inverse of Extracted.text()."""
    title, _, body = text.partition("\n\n")
    return Extracted(title=title, blocks=[line for line in body.split("\n") if line])


def normalise(text: str) -> str:
    """NFC, without invisible characters, runs of whitespace as one space, stripped (str.split()
    takes the same characters as whitespace as a regular expression's class does, for less: this
    runs for every block of every page whose bytes changed)."""
    if not text.isascii():  # (ASCII is NFC, and the invisible characters are not ASCII)
        if not unicodedata.is_normalized("NFC", text):
            text = unicodedata.normalize("NFC", text)
        text = _INVISIBLE.sub("", text)
    return " ".join(text.split())


def fold(text: str) -> str:
    """What a reader cannot tell apart: typographic quotes, dashes and ellipses as plain ASCII."""
    return text.translate(_FOLD)


_COUNTER_HINT = re.compile(rf"\b(?:{_COUNTER_WORDS}|ago)\b", re.I)
_DIGIT = re.compile(r"\d")


# A count or a duration on its own ("137", "(12)", "1.2k", "24:32"), not a price, not a share.
_LONE_NUMBER = re.compile(r"^[^\w$€£¥₹]*\d[\d,.:]*[kKmM]?[^\w$€£¥₹%]*$")
_DIGITS = re.compile(r"\d[\d,.]*")
COUNTER_LINE_WORDS = 20  # counters live in short meta lines; prose keeps its numbers


def mask_counters(text: str) -> str:
    """'1,234 views', 'Comments (12)', '5 minutes ago' -> numbers replaced by '#', in short
    lines only ("We received 3 comments from regulators" in a paragraph is content)."""
    if _LONE_NUMBER.match(text):  # a counter on its own: "137", "(12)", "1.2k"
        return _DIGITS.sub("#", text)
    if text.count(" ") >= COUNTER_LINE_WORDS or not _DIGIT.search(text) or not _COUNTER_HINT.search(text):
        return text
    text = _RELATIVE_TIME.sub(lambda m: re.sub(r"\d+", "#", m.group(0)), text)
    text = _COUNT_BEFORE.sub("#", text)
    return _COUNT_AFTER.sub(lambda m: m.group(1) + "#", text)


def mask_all(text: str) -> str:
    """Every number, long hex or id-like token replaced by '#' (for learned volatile blocks)."""
    text = re.sub(r"\b[0-9a-f]{8,}\b|\b[0-9A-Za-z_-]{20,}\b", "#", text)
    return re.sub(r"\d+", "#", text)


def normalise_url(href: str, base: str | None) -> str | None:
    """Absolute, without fragment or tracking parameters, query sorted; None for non-links."""
    href = href.strip()
    if not href or href.startswith(("#", "javascript:", "data:")):
        return None
    url = urljoin(base, href) if base else href
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    query = sorted((k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _TRACKING.match(k))
    netloc = parts.netloc.lower()
    if (parts.scheme, netloc.rsplit(":", 1)[-1]) in (("http", "80"), ("https", "443")):
        netloc = netloc.rsplit(":", 1)[0]
    if parts.scheme.lower() in ("http", "https"):
        # Shown without the scheme: a link moving from http to https is not an edit.
        return urlunsplit(("", netloc, parts.path, urlencode(query), "")).lstrip("/")
    return urlunsplit((parts.scheme.lower(), netloc, parts.path, urlencode(query), ""))


def settings_key(selector: str | None, ignore: list[str], ignore_text: list[str], rules: list | tuple = ()) -> str:
    """A fingerprint of everything that decides what text a page gives."""
    blob = json.dumps([EXTRACTOR_VERSION, selector, list(ignore), list(ignore_text), list(rules)], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def parse(html: str):
    """Lenient HTML parse (as browsers do: unclosed and stray tags are fine). A page of more than
    MAX_ELEMENTS elements is refused: walking it would cost memory in proportion, and no article
    is that large (a long Wikipedia article has a few tens of thousands)."""
    html = _XML_DECL.sub("", html, count=1).replace("\x00", "")
    if not html.strip():
        return None
    try:
        doc = lxml.html.document_fromstring(html, parser=_PARSER)
    except (etree.ParserError, ValueError):
        return None
    # (Counted by libxml2: iterating would make a Python object of each element.)
    if doc.xpath("count(descendant-or-self::*) + count(descendant::comment()) + "
                 "count(descendant::processing-instruction())") > MAX_ELEMENTS:
        raise ExtractError(f"page has more than {MAX_ELEMENTS:,} elements (limit); not read")
    return doc


def _tag(el) -> str | None:
    tag = el.tag
    return tag.lower() if isinstance(tag, str) else None


def _hidden(el) -> bool:
    return el.get("hidden") is not None or el.get("aria-hidden") == "true" or "display:none" in (
        el.get("style") or "").replace(" ", "").lower()


_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")


def _names(el) -> str:
    """id and classes, camelCase split into words ("relatedContent" -> "related-Content")."""
    return _CAMEL.sub("-", f"{el.get('id') or ''} {el.get('class') or ''}".strip())


def _words(el) -> int:
    return len(el.text_content().split())


def _link_words(el) -> int:
    """Words of el's text that are link text."""
    return sum(len(a.text_content().split()) for a in el.iter("a"))


_GENERATED = re.compile(r"\d{3,}")


def _segment(el) -> str:
    seg = _tag(el)
    ident = el.get("id")
    if ident and not _GENERATED.search(ident):
        seg += f"#{ident}"
    classes = [c for c in (el.get("class") or "").split() if not _GENERATED.search(c)]
    if classes:
        seg += f".{classes[0]}"
    return seg


def path_of(el, cache: dict | None = None) -> str:
    """A stable name for an element's place: tag#id.class segments up to the body, without
    generated-looking ids and classes (long digit runs) or positions."""
    if el is None or _tag(el) in ("body", "html", None):
        return ""
    if cache is not None and el in cache:
        return cache[el]
    parent = path_of(el.getparent(), cache)
    path = f"{parent} > {_segment(el)}" if parent else _segment(el)
    if cache is not None:
        cache[el] = path
    return path


class _Walker:
    """Turns an element tree into text blocks in document order."""

    def __init__(self, drop_chrome: bool, base_url: str | None, explain: bool):
        self.drop_chrome = drop_chrome
        self.base_url = base_url
        self.explain = explain
        self.blocks: list[Block] = []
        self.ignored: list[Block] = []
        self.scope_words = 0
        self.keep: set = set()  # the article's text container and its ancestors: never chrome by name
        self.core: set = set()  # everything inside the article's text containers
        self._paths: dict = {}
        self.site: tuple[str, ...] = ()  # the page's own hosts (see _own_hosts)
        self.kept_kinds: set = set()  # (tag, classes) of the article's containers that have classes

    def _emit(self, text: str, el) -> None:
        text = normalise(text)
        if text:
            self.blocks.append(Block(text, path_of(el, self._paths)))

    def _ignore(self, text: str, path: str, reason: str) -> None:
        if self.explain:
            self.ignored.append(Block(text, path, reason))

    def _flush(self, parts: list[str], el) -> None:
        if parts:
            self._emit("".join(parts), el)
            parts.clear()

    def _skip(self, el, tag: str, in_article: bool) -> str | None:
        """Why el is not watched (None: it is)."""
        if el.get("data-monitor-ignore") is not None:
            return f"user rule: ignore {el.get('data-monitor-ignore')!r}"
        if not self.drop_chrome or el in self.keep:
            return None
        if tag in CHROME_TAGS or el.get("role") in CHROME_ROLES:
            return f"page chrome: <{tag}{' role=' + el.get('role') if el.get('role') else ''}>"
        if tag == "header" and not in_article and _own_words(el) < HEADER_PROSE:
            return "page chrome: site header"
        if tag == "form" and _words(el) <= SMALL_FORM_WORDS:
            return "page chrome: form"
        if tag in ("ul", "ol") and _link_list(el) and not (el in self.core and _references(el, self.base_url, self.site)):
            return "page chrome: a list of links"
        if el not in self.core and _card_grid(el):
            return "page chrome: cards linking to other pages"
        if tag not in TEXT_TAGS and tag not in INLINE_TAGS and el not in self.core and _cookie_notice(el):
            return "page chrome: a cookie notice"
        names = _names(el) if tag not in TEXT_TAGS and tag not in INLINE_TAGS else ""
        if names and (tag, _classes(el)) in self.kept_kinds:
            names = ""  # the same kind of section as one holding the article (a "content-nav-section")
        # A big container named after chrome is a layout wrapper ("content-with-sidebar"), not a widget.
        if names and CHROME_NAMES.search(names.replace(" ", "-")) and _words(el) < 0.4 * self.scope_words:
            return f"page chrome: {names!r}"
        return None

    def flat(self, el, in_article: bool) -> str:
        """All of el's visible text as one line (for a table cell), by the same rules as walk."""
        saved, self.blocks = self.blocks, []
        parts: list[str] = []
        self.walk(el, parts, in_article)
        self._flush(parts, el)
        text, self.blocks = " ".join(b.text for b in self.blocks), saved
        return text

    def walk(self, el, parts: list[str], in_article: bool = False) -> None:
        """Append el's inline text to parts, or emit blocks for el when it is a block."""
        tag = _tag(el)
        # The article's own containers count even when hidden: a streamed page (React's
        # <div hidden id="S:1">) keeps its article there until a script moves it.
        if tag is None or tag in DROP_TAGS or (_hidden(el) and el not in self.keep and el not in self.core):
            return
        reason = self._skip(el, tag, in_article)
        if reason:
            if self.explain:
                for block in _all_blocks(el, self.base_url):
                    self._ignore(block.text, block.path, reason)
            return
        if tag == "br":
            parts.append(" ")
            return
        if tag == "img":
            alt = normalise(el.get("alt") or "")
            if alt:
                parts.append(f" [image: {alt}] ")
            return
        if tag == "tr" and not _layout(el):
            self._flush(parts, el.getparent())
            cells = [self.flat(c, in_article) for c in el if _tag(c) in CELL_TAGS and not _hidden(c)]
            row = " | ".join(c for c in cells if c)
            if row:
                self._emit(row, el)
            return
        block = tag in BLOCK_TAGS
        in_article = in_article or tag == "article"
        inner: list[str] = []
        if block:
            self._flush(parts, el.getparent())
        target = inner if block else parts
        if el.text:
            target.append(el.text)
        for child in el:
            if _tag(child) in BLOCK_TAGS and not block:
                # A block inside an inline element (a <div> in an <a>): the inline text so far
                # is a block of its own.
                self._flush(parts, el)
            self.walk(child, target, in_article)
            if child.tail:
                target.append(child.tail)
        if tag == "a" and el.get("href"):
            url = normalise_url(el.get("href"), self.base_url)
            if url and url not in " ".join(target):
                target.append(f" ⟨{url}⟩")
        if block:
            self._flush(inner, el)


LINK_LIST_SHARE = 0.7
HEADER_PROSE = 40  # a <header> with this much text that is not links is the article's opening, not the site's
CARD_TAGS = frozenset(("div", "article", "section", "a"))  # not paragraphs, not list items (see _link_list)
HEADINGS = ("h2", "h3", "h4", "h5", "h6")
CARD_INSIDE = ("div", "p", "img", "figure", *HEADINGS)  # a link that is a card, not a link in a line
CARD_WORDS = 40  # a teaser's own words (a title, a line of excerpt); more is prose of its own


def _classes(el) -> frozenset:
    """el's classes, without generated-looking ones."""
    return frozenset(c for c in (el.get("class") or "").split() if not _GENERATED.search(c))


def _kind(el, loose: bool = False) -> tuple:
    """What makes siblings the same kind of block: their tag and class; `loose`, their tag and
    first class that is not generated (a WordPress post loop's <li class="wp-block-post
    post-1819 …"> are all one kind). Dropping cards as chrome takes the strict kind, watching a
    run of blocks as the article the loose one: in doubt, a block is watched."""
    if not loose:
        return el.tag, el.get("class")
    return el.tag, next((c for c in (el.get("class") or "").split() if not _GENERATED.search(c)), None)


def _card_grid(el) -> bool:
    """Teaser cards (more news, read next, featured posts): three or more children of the same
    kind side by side, each a link, or a linked title with at most a line of excerpt."""
    if _tag(el) in TEXT_TAGS or _tag(el) in INLINE_TAGS:
        return False  # links in a sentence
    kinds: dict = {}
    for child in el:
        if child.tag in CARD_TAGS:
            kinds.setdefault(_kind(child), []).append(child)
    cards = max(kinds.values(), key=len, default=[])
    if len(cards) < 3:
        return False
    if not all(_linked_heading(card) or (card.tag == "a" and next(card.iter(*CARD_INSIDE), None) is not None)
               for card in cards):
        return False
    return sum(_own_words(card) for card in cards) <= CARD_WORDS * len(cards)


def _linked_heading(el) -> bool:
    """el holds a heading that is a link (a teaser's title), not a heading with links in the text
    below it (a listicle's item)."""
    for heading in el.iter(*HEADINGS):
        words = _words(heading)
        if words and (any(_tag(a) == "a" for a in heading.iterancestors())
                      or _link_words(heading) * 2 >= words):
            return True
    return False


NOTICE_WORDS = 80
_COOKIES = re.compile(r"\bcookies?\b", re.I)
_CONSENT = re.compile(r"\b(?:accept|consent|agree|reject|privacy|preferences)\b", re.I)


def _cookie_notice(el) -> bool:
    """A short box asking to accept cookies (whatever its class names: a consent platform's
    generated ones say nothing)."""
    if _words(el) > NOTICE_WORDS:
        return False
    text = el.text_content()
    return bool(_COOKIES.search(text) and _CONSENT.search(text))


def _link_list(el) -> bool:
    """A list of links (related, trending, read next): three or more items, mostly link text."""
    items = [li for li in el if _tag(li) == "li"]
    if len(items) < 3:
        return False
    text = len("".join(el.itertext()).split()) or 1
    return _link_words(el) >= LINK_LIST_SHARE * text


REFERENCE_WORDS = 5  # a cited title, not a site's name ("Facebook") or a section's ("Tax software")


def _references(el, base_url: str | None, site: tuple[str, ...]) -> bool:
    """A list of links that cites sources: most links lead to other sites and each item is a
    title. Inside the article's text it is part of the article (a removed source is an edit);
    related, trending and read-next lists link to the page's own site."""
    items = [li for li in el if _tag(li) == "li"]
    hrefs = [a.get("href") or "" for a in el.iter("a")]
    if not site or not hrefs or _words(el) < REFERENCE_WORDS * len(items):
        return False
    away = sum(1 for h in hrefs if not _same_site(urlsplit(urljoin(base_url or "", h)).hostname, site))
    return away >= LINK_LIST_SHARE * len(hrefs)


def _own_hosts(root, url: str | None) -> tuple[str, ...]:
    """The hosts the page calls its own: where it was fetched from, its canonical URL's (a page
    served from a mirror or a CDN names its site there), and the host its links lead to most
    (its menus, footer and related posts)."""
    urls = [url or ""] + [el.get("href") or "" for el in root.iter("link") if (el.get("rel") or "").lower() == "canonical"]
    urls += [el.get("content") or "" for el in root.iter("meta") if el.get("property") == "og:url"]
    linked = Counter(_host(a.get("href") or "") for a in root.iter("a"))
    linked.pop(None, None)
    urls += [f"//{host}" for host, _ in linked.most_common(1)]
    return tuple(dict.fromkeys(host for host in map(_host, urls) if host))


def _host(url: str) -> str | None:
    try:
        return urlsplit(url.strip()).hostname
    except ValueError:
        return None


def _same_site(host: str | None, site: tuple[str, ...]) -> bool:
    """host is one of site's hosts or shares its name: a subdomain either way, or the same last
    two labels where the second is a name, not a second-level suffix like co.uk or com.au."""
    if host is None:
        return True  # a relative link
    host = host.lower().removeprefix("www.")
    for own in site:
        own = own.lower().removeprefix("www.")
        if host == own or host.endswith("." + own) or own.endswith("." + host):
            return True
        mine, theirs = own.split("."), host.split(".")
        if len(mine) >= 2 and mine[-2:] == theirs[-2:] and len(mine[-2]) > 3:
            return True
    return False


def _layout(el) -> bool:
    """A table row used for page layout: its cells hold sections, lists, headings or other
    tables, or far more text than a data row."""
    cells = [c for c in el if _tag(c) in CELL_TAGS]
    nested = any(next(c.iter("div", "table", "ul", "ol", "h1", "h2", "h3", "h4"), None) is not None for c in cells)
    return nested or _words(el) > 150


def _all_blocks(el, base_url: str | None) -> list[Block]:
    """Every block under el with no rules applied (for explain)."""
    walker = _Walker(drop_chrome=False, base_url=base_url, explain=False)
    parts: list[str] = []
    walker.walk(el, parts, in_article=True)
    walker._flush(parts, el)
    return walker.blocks


def _content_score(el) -> float:
    names = _names(el)
    score = {"div": 5, "article": 10, "section": 3, "td": 3, "blockquote": 3, "form": -3, "ul": -3, "li": -3,
             "th": -5}.get(_tag(el), 0)
    if names:
        score += 25 if CONTENT_NAMES.search(names) else 0
        score -= 25 if CHROME_NAMES.search(names.replace(" ", "-")) else 0
    return score


_PARA_BLOCKS = ("p", "div", "table", "ul", "ol", "section", "article", "blockquote", "pre", "h1", "h2", "h3",
                "h4", "h5", "h6", "form", "dl")


def _holding_blocks(body) -> set:
    """The elements with a block element (paragraph, list, table, section…) inside them."""
    holding: set = set()
    for el in body.iter(*_PARA_BLOCKS):
        parent = el.getparent()
        while parent is not None and parent not in holding:
            holding.add(parent)
            parent = parent.getparent()
    return holding


CLIMB_SHARE = 0.5
STRAY_LINK_WORDS = 3


def _best_container(body):
    """The element holding the most paragraph text, readability's way: each paragraph scores
    its parent fully and its grandparent half; link-heavy containers are discounted."""
    scores: dict = {}
    prose: dict = {}  # paragraph -> its words that are not link text
    holding = _holding_blocks(body)
    for para in body.iter("p", "pre", "td", "blockquote", "div"):
        if _tag(para) in ("td", "div") and para in holding:
            continue  # a layout cell or a wrapper, not a paragraph
        text = para.text_content()
        if len(text) < 25:
            continue
        points = 1 + text.count(",") + min(len(text) // 100, 3)
        prose[para] = len(text.split()) - _link_words(para)
        parent = para.getparent()
        for el, share in ((parent, 1.0), (parent.getparent() if parent is not None else None, 0.5)):
            if el is None or _tag(el) in (None, "html"):
                continue
            if el not in scores:
                scores[el] = _content_score(el)
            scores[el] += points * share
    if not scores:
        return None
    finals: dict = {}

    def final(el) -> float:
        if el not in finals:
            text = len(el.text_content()) or 1
            links = sum(len(a.text_content()) for a in el.iter("a"))
            finals[el] = scores[el] * (1 - links / text)
        return finals[el]
    top = max(scores, key=final)
    best, article = top, {top}
    # Its siblings that hold paragraphs too (an article split into sections) join it, as in
    # readability: a sibling scoring a fifth of the best (more when it shares the best's class).
    parent = top.getparent()
    if parent is not None and _tag(parent) not in ("body", "html"):
        threshold = max(10.0, final(top) * 0.2)
        for sibling in parent:
            if sibling is top or sibling not in scores:
                continue
            bonus = final(top) * 0.2 if sibling.get("class") and sibling.get("class") == top.get("class") else 0
            if final(sibling) + bonus >= threshold:
                article.add(sibling)
        if len(article) > 1:
            best = parent
    # Climb while what the parent adds is prose rather than links (a lead image and caption, the
    # headline and byline) and at most half as much again: menus and link lists stop it.
    counted = {}  # element -> its words (a parent's words are the next step's own)
    while (parent := best.getparent()) is not None and _tag(parent) not in ("body", "html"):
        for el in (best, parent):
            if el not in counted:
                counted[el] = _words(el)
        words, extra_words, extra_link_words, extra_prose = counted[best], counted[parent] - counted[best], 0, 0
        for child in parent:
            if child is not best and isinstance(child.tag, str):
                extra_link_words += _link_words(child)
                extra_prose += sum(prose.get(el, 0) for el in child.iter())
        run = _run_above(best, prose)
        if run is not None:
            best = run  # the article is a run of blocks of one kind (a how-to's steps, a list of venues)
            continue
        if extra_link_words > max(0.3 * extra_words, STRAY_LINK_WORDS):
            break  # menus and link lists; not a stray "read more" link
        # More than half as much again only when it is paragraphs too (an article in sections).
        if extra_words > CLIMB_SHARE * words and extra_prose < 0.6 * extra_words:
            break
        best = parent
    return best, article


RUN_LEVELS = 6  # how far above the densest text a run of blocks is looked for (a post loop's card wrappers)


def _run_above(el, prose: dict):
    """The element holding a run of blocks of one kind that el is, or sits inside (within
    RUN_LEVELS): a how-to's steps, a post loop's entries each a linked title and an excerpt.
    Further up than el's parent, the run's blocks must be alike in size too: an article beside a
    few small sections of the same kind (a shop's page sections) is not one of a run."""
    for level, block in enumerate((el, *el.iterancestors())):
        parent = block.getparent()
        if level > RUN_LEVELS or parent is None or _tag(parent) in ("body", "html"):
            return None
        if _repeated(block, prose, even=level > 1):
            return parent
    return None


EVEN_RUN = 3  # in an even run no block holds more than this many times the median block's prose


def _repeated(el, prose: dict, even: bool = False) -> bool:
    """el is one of three or more siblings of its kind, most of them holding paragraphs of prose:
    the steps or sections of one text. Siblings of one tag and class are one kind; siblings that
    share only their first class (generated ones aside) are one kind when the run is even too,
    as is any run when `even`: a long article beside short sections of the same kind is not."""
    for loose in (False, True):
        kind = _kind(el, loose)
        if kind[1] is None:
            continue
        same = [s for s in el.getparent() if isinstance(s.tag, str) and _kind(s, loose) == kind]
        holding = sum(1 for s in same if any(p in prose for p in s.iter()))
        if holding < 3 or holding * 3 < len(same) * 2:
            continue
        sizes = sorted(sum(prose.get(p, 0) for p in s.iter()) for s in same)
        if (even or loose) and sizes[-1] > EVEN_RUN * sizes[len(sizes) // 2]:
            continue
        return True
    return False


def _own_words(el) -> int:
    """Words of el's text that are not link text."""
    return _words(el) - _link_words(el)


def _scope(root) -> tuple[list, str, set]:
    """The main content element, its name, and the densest text containers (kept whole).

    An <article>, <main> or role=main is the scope when it holds the densest text, or at least
    half as much prose as the densest container (an ad slot or a share bar marked up as <main>
    or <article> is not the article)."""
    body = root.find("body")
    body = body if body is not None else root
    best, article = _best_container(body) or (None, set())
    articles = list(root.iter("article"))
    semantic = ([(articles[0], "article")] if len(articles) == 1 else []) + [
        (el, "main") for el in root.iter("main")] + [(el, "[role=main]") for el in root.xpath("descendant-or-self::*[@role='main']")]
    if best is None or best is body:
        if semantic:
            return [semantic[0][0]], semantic[0][1], _article_in(semantic[0][0])
        return [body], "body", article
    ancestors = {best, *best.iterancestors()}
    holding = [el for el in articles if el in ancestors]
    if holding:
        return [holding[-1]], "article", article
    for el, name in semantic:
        if el in ancestors:
            return [el], name, article
    prose = _own_words(best)
    for el, name in semantic:
        if _own_words(el) >= 0.5 * prose:
            return [el], name, _article_in(el)
    return [best], f"densest text: {path_of(best)}", article


def _article_in(scope) -> set:
    """The densest text containers inside scope (the same ones whether the scope was chosen now
    or pinned earlier)."""
    return (_best_container(scope) or (None, set()))[1]


def pin_rule(el, why: str) -> dict:
    """A scope rule: the container by its path (and which of the elements with that path), so
    later checks watch the same one."""
    root = el.getroottree().getroot()
    path, cache = path_of(el), {}
    same = [e for e in root.iter(el.tag) if path_of(e, cache) == path] if path else [el]
    return {"path": path, "action": "scope", "nth": same.index(el), "reason": f"chosen at first capture: {why.split(': ', 1)[0]}"}


def _pinned(root, rule: dict):
    """The element a scope rule names, or None when the page no longer has it."""
    if not rule["path"]:
        body = root.find("body")
        return body if body is not None else root
    tag, cache = rule["path"].rsplit(" > ", 1)[-1].split("#")[0].split(".")[0], {}
    same = [e for e in root.iter(tag) if path_of(e, cache) == rule["path"]]
    return same[rule["nth"]] if rule["nth"] < len(same) else None


def _title(root) -> str:
    title = root.find(".//title")
    if title is not None and normalise(title.text_content()):
        return normalise(title.text_content())
    for meta in root.iter("meta"):
        if meta.get("property") == "og:title" and meta.get("content"):
            return normalise(meta.get("content"))
    for h1 in root.iter("h1"):
        return normalise(h1.text_content())
    return ""


def _mark_css(html: str, selector: str | None, ignore) -> str:
    """Apply the user's CSS rules with beautifulsoup4: mark what `ignore` matches and what
    `selector` selects, for the lxml walk to honour."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "lxml")
    for pattern in ignore:
        for tag in soup.select(pattern):
            tag["data-monitor-ignore"] = pattern
    if selector:
        found = soup.select(selector)
        if not found:
            raise ExtractError(f"selector {selector!r} matched nothing on the page")
        for tag in found:
            tag["data-monitor-selected"] = "1"
    return str(soup)


def _base(root, url: str | None) -> str | None:
    base = root.find(".//base[@href]")
    return urljoin(url or "", base.get("href")) if base is not None else url


def extract(html: str, selector: str | None = None, ignore: list[str] | tuple = (),
            ignore_text: list[str] | tuple = (), url: str | None = None, rules: list[dict] | tuple = (),
            explain: bool = False) -> Extracted:
    """The watched text of a page. `url` resolves relative links; `rules` are learned volatile
    rules; `explain` also returns every ignored block with its reason."""
    root = parse(_mark_css(html, selector, ignore) if (selector or ignore) else html)
    pin = repinned = None
    if root is None:
        return Extracted(title="", blocks=[], scope="empty")
    title = _title(root)
    base_url = _base(root, url)
    if selector:
        marked = [el for el in root.iter() if el.get("data-monitor-selected") is not None]
        scopes = [el for el in marked if not any(p.get("data-monitor-selected") is not None
                                                 for p in el.iterancestors())]
        scope_name, drop_chrome = selector, False
    else:
        drop_chrome = True
        pin = next((r for r in rules if r.get("action") == "scope"), None)
        pinned = _pinned(root, pin) if pin else None
        if pinned is not None:
            scopes, scope_name = [pinned], f"pinned: {pin['path'] or 'body'} ({pin['reason']})"
            article = _article_in(pinned)
        else:
            scopes, scope_name, article = _scope(root)
            if pin:
                repinned = f"the pinned scope {pin['path']!r} is gone; watching {scope_name} instead"
                pin = None
    walker = _Walker(drop_chrome, base_url, explain)
    walker.site = _own_hosts(root, url)
    if drop_chrome:
        walker.keep = {a for el in article for a in (el, *el.iterancestors())}
        walker.core = {d for el in article for d in el.iterdescendants()}
        walker.kept_kinds = {(el.tag, _classes(el)) for el in walker.keep if _classes(el)}
    for scope in scopes:
        parts: list[str] = []
        walker.scope_words = _words(scope)
        walker.walk(scope, parts, in_article=_tag(scope) == "article" or not drop_chrome)
        walker._flush(parts, scope)
    patterns = [re.compile(p) for p in ignore_text]
    by_path = {r["path"]: r for r in rules if r.get("action") != "scope"}
    blocks = []
    for block in walker.blocks:
        text = block.text
        for pattern in patterns:
            text = normalise(pattern.sub("", text))
        if text != block.text:
            walker._ignore(block.text, block.path, "user rule: ignore_text")
        text = mask_counters(text)
        rule = by_path.get(block.path)
        if rule is not None and rule["action"] == "drop":
            walker._ignore(text, block.path, f"learned volatile: {rule.get('reason') or 'changes on its own'}")
            continue
        if rule is not None and mask_all(text) in rule["templates"]:
            text = mask_all(text)
        if text:
            blocks.append(Block(text, block.path))
    for pattern in patterns:
        title = normalise(pattern.sub("", title))
    explained: list[Block] = []
    if explain:
        explained = _explain(root, scopes, scope_name, blocks, walker.ignored, base_url)
    if not selector and pin is None:
        pin = pin_rule(scopes[0], scope_name)
    return Extracted(title=title, blocks=[b.text for b in blocks], scope=scope_name,
                     paths=[b.path for b in blocks], explained=explained, pin=pin, repinned=repinned)


def _explain(root, scopes, scope_name, watched, ignored, base_url) -> list[Block]:
    """Every block of the page: watched, ignored inside the scope (with the reason), then
    everything outside the scope."""
    body = root.find("body")
    body = body if body is not None else root
    # Sets of elements, not of id()s: lxml keeps one proxy per node only while it is referenced.
    in_scope = set(scopes)
    holds_scope = {a for s in scopes for a in s.iterancestors()}
    outside: list[Block] = []

    def visit(el) -> None:
        for child in el:
            if child in in_scope or _tag(child) is None:
                continue
            if child in holds_scope:
                visit(child)
            else:
                outside.extend(Block(b.text, b.path, f"outside main content ({scope_name})")
                               for b in _all_blocks(child, base_url))

    if body not in in_scope:
        visit(body)
    return [Block(b.text, b.path) for b in watched] + ignored + outside
