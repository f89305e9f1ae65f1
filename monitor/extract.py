"""HTML -> the watched content as normalised text blocks, plus the page title.

One block per paragraph, heading, list item, table row, quote or caption; whitespace and
characters no reader sees are normalised away. The default scope is the page's main content
(the one <article>, else <main> / role=main, else <body>) without navigation, sidebars,
footers, forms, scripts and hidden elements.

User rules are CSS: `selector` (what to watch) and `ignore` (what to drop inside it) are applied
with beautifulsoup4 (soupsieve); `ignore_text` drops text by regular expression. The walk that
turns elements into blocks runs on lxml's tree, which parses a 50 KB page in about a
millisecond — every check of a page whose bytes changed has to extract it.
"""
from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass, field

import lxml.html
from lxml import etree

# Bump when the text this module produces for the same page changes; stored with each version so
# a new extractor re-reads the previous capture instead of reporting its own change as an edit.
EXTRACTOR_VERSION = 1

BLOCK_TAGS = frozenset(
    "p h1 h2 h3 h4 h5 h6 li dt dd tr blockquote pre figcaption caption address summary legend "
    "div section article main aside header footer nav ul ol dl table tbody thead tfoot figure details body "
    "center hgroup search".split()
)
CELL_TAGS = frozenset(("td", "th"))
DROP_TAGS = frozenset(
    "script style noscript template svg math canvas iframe object embed head button select input textarea "
    "option datalist".split()
)
CHROME_TAGS = frozenset(("nav", "aside", "footer", "form", "dialog"))
CHROME_ROLES = frozenset(("navigation", "banner", "contentinfo", "complementary", "search", "dialog"))

_INVISIBLE = dict.fromkeys(map(ord, "\u00ad\u200b\u200c\u200d\u2060\ufeff"), None)
_SPACES = re.compile(r"\s+")
_XML_DECL = re.compile(r"^\s*<\?xml[^>]*\?>")
_PARSER = lxml.html.HTMLParser(remove_comments=True, remove_pis=True)


class ExtractError(Exception):
    """The page cannot give the content asked for (e.g. a selector matched nothing)."""


@dataclass
class Extracted:
    title: str
    blocks: list[str]
    scope: str = "body"
    notes: list[str] = field(default_factory=list)

    @property
    def lines(self) -> list[str]:
        """The document the diff sees: the title first, then the blocks."""
        return ([self.title] if self.title else []) + self.blocks

    def text(self) -> str:
        """The stored form: title, a blank line, then one block per line."""
        return self.title + "\n\n" + "\n".join(self.blocks) + "\n"

    @property
    def word_count(self) -> int:
        return sum(len(block.split()) for block in self.blocks)


def parse_text(text: str) -> Extracted:
    """The inverse of Extracted.text()."""
    title, _, body = text.partition("\n\n")
    return Extracted(title=title, blocks=[line for line in body.split("\n") if line])


def normalise(text: str) -> str:
    text = unicodedata.normalize("NFC", text).translate(_INVISIBLE)
    return _SPACES.sub(" ", text).strip()


def settings_key(selector: str | None, ignore: list[str], ignore_text: list[str]) -> str:
    """A fingerprint of everything that decides what text a page gives."""
    blob = json.dumps([EXTRACTOR_VERSION, selector, list(ignore), list(ignore_text)])
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def parse(html: str):
    """Lenient HTML parse (as browsers do: unclosed and stray tags are fine)."""
    html = _XML_DECL.sub("", html, count=1).replace("\x00", "")
    if not html.strip():
        return None
    try:
        return lxml.html.document_fromstring(html, parser=_PARSER)
    except (etree.ParserError, ValueError):
        return None


def _tag(el) -> str | None:
    tag = el.tag
    return tag.lower() if isinstance(tag, str) else None


def _hidden(el) -> bool:
    return el.get("hidden") is not None or el.get("aria-hidden") == "true"


class _Walker:
    """Turns an element tree into text blocks in document order."""

    def __init__(self, drop_chrome: bool):
        self.drop_chrome = drop_chrome
        self.blocks: list[str] = []

    def _flush(self, parts: list[str]) -> None:
        if parts:
            text = normalise("".join(parts))
            if text:
                self.blocks.append(text)
            parts.clear()

    def _skip(self, el, tag: str, in_article: bool) -> bool:
        if tag in DROP_TAGS or _hidden(el):
            return True
        if not self.drop_chrome:
            return False
        if tag in CHROME_TAGS or el.get("role") in CHROME_ROLES:
            return True
        return tag == "header" and not in_article

    def flat(self, el, in_article: bool) -> str:
        """All of el's visible text as one line (for a table cell), by the same rules as walk."""
        saved, self.blocks = self.blocks, []
        parts: list[str] = []
        self.walk(el, parts, in_article)
        self._flush(parts)
        text, self.blocks = " ".join(self.blocks), saved
        return text

    def walk(self, el, parts: list[str], in_article: bool = False) -> None:
        """Append el's inline text to parts, or emit blocks for el when it is a block."""
        tag = _tag(el)
        if tag is None or self._skip(el, tag, in_article):
            return
        if tag == "br":
            parts.append(" ")
            return
        if tag == "tr":
            self._flush(parts)
            cells = [self.flat(c, in_article) for c in el if _tag(c) in CELL_TAGS and not _hidden(c)]
            row = " | ".join(c for c in cells if c)
            if row:
                self.blocks.append(row)
            return
        block = tag in BLOCK_TAGS
        in_article = in_article or tag == "article"
        inner: list[str] = []
        if block:
            self._flush(parts)
        target = inner if block else parts
        if el.text:
            target.append(el.text)
        for child in el:
            if _tag(child) in BLOCK_TAGS and not block:
                # A block inside an inline element (a <div> in an <a>): the inline text so far
                # is a block of its own.
                self._flush(parts)
            self.walk(child, target, in_article)
            if child.tail:
                target.append(child.tail)
        if block:
            self._flush(inner)


def _scope(root) -> tuple[list, str]:
    articles = [el for el in root.iter("article")]
    if len(articles) == 1:
        return articles, "article"
    for el in root.iter("main"):
        return [el], "main"
    for el in root.iter():
        if el.get("role") == "main":
            return [el], "[role=main]"
    body = root.find("body")
    return [body if body is not None else root], "body"


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


def _apply_css(html: str, selector: str | None, ignore) -> list[str]:
    """Apply the user's CSS rules with beautifulsoup4: the HTML of what is left to watch."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "lxml")
    for pattern in ignore:
        for tag in soup.select(pattern):
            tag.decompose()
    if not selector:
        return [str(soup)]
    found = soup.select(selector)
    if not found:
        raise ExtractError(f"selector {selector!r} matched nothing on the page")
    ids = {id(tag) for tag in found}
    # Matches nested inside other matches are already part of them.
    return [str(tag) for tag in found if not any(id(p) in ids for p in tag.parents)]


def extract(html: str, selector: str | None = None, ignore: list[str] | tuple = (),
            ignore_text: list[str] | tuple = ()) -> Extracted:
    root = parse(html)
    if root is None:
        return Extracted(title="", blocks=[], scope="empty")
    title = _title(root)
    if selector or ignore:
        fragments = _apply_css(html, selector, ignore)
        roots = [r for r in (parse(f) for f in fragments) if r is not None]
        if selector:
            roots = [r.find("body") if r.find("body") is not None else r for r in roots]
            scopes, scope_name, drop_chrome = roots, selector, False
        else:
            scopes, scope_name = _scope(roots[0]) if roots else ([], "body")
            drop_chrome = True
    else:
        scopes, scope_name = _scope(root)
        drop_chrome = True
    walker = _Walker(drop_chrome)
    for scope in scopes:
        parts: list[str] = []
        walker.walk(scope, parts, in_article=_tag(scope) == "article" or not drop_chrome)
        walker._flush(parts)
    blocks = walker.blocks
    if ignore_text:
        patterns = [re.compile(p) for p in ignore_text]
        cleaned = []
        for text in blocks:
            for pattern in patterns:
                text = normalise(pattern.sub("", text))
            if text:
                cleaned.append(text)
        blocks = cleaned
        for pattern in patterns:
            title = normalise(pattern.sub("", title))
    return Extracted(title=title, blocks=blocks, scope=scope_name)
