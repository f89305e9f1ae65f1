"""HTML -> the watched content as normalised text blocks, plus the page title.

One block per paragraph, heading, list item, table row, quote or caption; whitespace and
characters no reader sees are normalised away. The default scope is the page's main content;
`selector`, `ignore` and `ignore_text` refine it.
"""
from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass, field

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # bs4 is imported when a page is parsed, not by every command that reads the store
    from bs4 import BeautifulSoup, NavigableString, Tag

# Bump when the text this module produces for the same page changes; stored with each version so
# a new extractor re-reads the previous capture instead of reporting its own change as an edit.
EXTRACTOR_VERSION = 1

BLOCK_TAGS = frozenset(
    "p h1 h2 h3 h4 h5 h6 li dt dd tr blockquote pre figcaption caption address summary "
    "div section article main aside header footer nav ul ol dl table tbody thead tfoot figure details body td th".split()
)
# Inside a table row, cells are parts of the row's block rather than blocks of their own.
CELL_TAGS = frozenset(("td", "th"))
DROP_ALWAYS = "script, style, noscript, template, svg, canvas, iframe, object, embed, head, button, select, input, textarea, [hidden], [aria-hidden=true]"
DROP_CHROME = (
    "nav, aside, footer, form, dialog, [role=navigation], [role=banner], [role=contentinfo], "
    "[role=complementary], [role=search], [role=dialog]"
)
MAIN_CANDIDATES = ("main", "[role=main]")

_INVISIBLE = dict.fromkeys(map(ord, "\u00ad\u200b\u200c\u200d\u2060\ufeff"), None)
_SPACES = re.compile(r"\s+")


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


def _title(soup: BeautifulSoup) -> str:
    if soup.title and soup.title.string:
        return normalise(soup.title.get_text())
    meta = soup.find("meta", attrs={"property": "og:title"})
    if meta and meta.get("content"):
        return normalise(meta["content"])
    h1 = soup.find("h1")
    return normalise(h1.get_text(" ")) if h1 else ""


def _scope(soup: BeautifulSoup, selector: str | None) -> tuple[list[Tag], str]:
    if selector:
        found = soup.select(selector)
        if not found:
            raise ExtractError(f"selector {selector!r} matched nothing on the page")
        # Drop matches nested inside other matches so no text is counted twice.
        ids = {id(tag) for tag in found}
        return [t for t in found if not any(id(p) in ids for p in t.parents)], selector
    articles = soup.find_all("article")
    if len(articles) == 1:
        return articles, "article"
    for candidate in MAIN_CANDIDATES:
        found = soup.select_one(candidate)
        if found is not None:
            return [found], candidate
    return [soup.body or soup], "body"


def _block_of(node: NavigableString, stop: Tag) -> Tag:
    parent = node.parent
    while parent is not None and parent is not stop:
        if parent.name in BLOCK_TAGS and parent.name not in CELL_TAGS:
            return parent
        parent = parent.parent
    return stop


def _blocks(root: Tag, patterns: list[re.Pattern]) -> list[str]:
    from bs4 import NavigableString

    order: list[Tag] = []
    parts: dict[int, list[str]] = {}
    for node in root.find_all(string=True):
        if type(node) is not NavigableString:  # comments, doctypes, CDATA
            continue
        block = _block_of(node, root)
        if id(block) not in parts:
            parts[id(block)] = []
            order.append(block)
        parts[id(block)].append(node)
    blocks = []
    for block in order:
        if block.name == "tr":
            cells = block.find_all(CELL_TAGS, recursive=False)
            text = " | ".join(filter(None, (normalise(c.get_text(" ")) for c in cells)))
        else:
            text = normalise(" ".join(parts[id(block)]))
        for pattern in patterns:
            text = normalise(pattern.sub("", text))
        if text:
            blocks.append(text)
    return blocks


def extract(html: str, selector: str | None = None, ignore: list[str] | tuple = (),
            ignore_text: list[str] | tuple = ()) -> Extracted:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "lxml")
    title = _title(soup)
    for tag in soup.select(DROP_ALWAYS):
        tag.decompose()
    scopes, scope_name = _scope(soup, selector)
    notes = []
    if not selector:
        for scope in scopes:
            for tag in scope.select(DROP_CHROME):
                tag.decompose()
            for tag in scope.find_all("header"):
                if tag.find_parent("article") is None and scope.name != "article":
                    tag.decompose()
    for pattern in ignore:
        for scope in scopes:
            for tag in scope.select(pattern):
                tag.decompose()
    patterns = [re.compile(p) for p in ignore_text]
    blocks: list[str] = []
    for scope in scopes:
        blocks.extend(_blocks(scope, patterns))
    for pattern in patterns:
        title = normalise(pattern.sub("", title))
    return Extracted(title=title, blocks=blocks, scope=scope_name, notes=notes)
