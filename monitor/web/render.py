"""Diff ops -> what the pages draw: paragraphs for the inline view, aligned rows for the side-by-side
view, long unchanged stretches folded away; times as <time> elements; keywords marked.

Everything returned as Markup is built from escaped text only.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from itertools import zip_longest

from markupsafe import Markup, escape

from ..diff import DELETE, EQUAL, INSERT

CONTEXT = 1  # unchanged paragraphs shown either side of a change
MIN_FOLD = 3  # unchanged stretches at least this long fold away
Segment = tuple[int, str]


@dataclass
class Line:
    """One paragraph of the inline view: kept, removed or added whole, or changed inside."""

    segments: list[Segment]

    @property
    def kind(self) -> str:
        ops = {op for op, text in self.segments if text.strip()}
        if ops <= {EQUAL}:
            return "kept"
        if ops == {DELETE}:
            return "removed"
        if ops == {INSERT}:
            return "added"
        return "changed"

    @property
    def changed(self) -> bool:
        return self.kind != "kept"


@dataclass
class Row:
    """One row of the side-by-side view: paragraphs of the old text left, of the new text right."""

    left: list[list[Segment]]
    right: list[list[Segment]]

    @property
    def kind(self) -> str:
        if not self.right:
            return "removed"
        if not self.left:
            return "added"
        changed = any(op != EQUAL for side in (self.left, self.right) for line in side for op, _ in line)
        return "changed" if changed else "kept"

    @property
    def changed(self) -> bool:
        return self.kind != "kept"


def inline(ops: list[list]) -> list[Line]:
    lines: list[Line] = []
    current: list[Segment] = []
    for op, text in ops:
        for k, part in enumerate(text.split("\n")):
            if k and current:
                lines.append(Line(current))
                current = []
            if part:
                current.append((op, part))
    if current:
        lines.append(Line(current))
    return lines


def side_by_side(ops: list[list]) -> list[Row]:
    """Rows end where both texts are at a paragraph break; then runs of removed paragraphs are
    paired with the added paragraphs that follow them, so a rewritten paragraph sits beside its
    old form."""
    rows: list[Row] = []
    left: list[list[Segment]] = [[]]
    right: list[list[Segment]] = [[]]
    for op, text in ops:
        for k, part in enumerate(text.split("\n")):
            if k:
                if op != INSERT:
                    left.append([])
                if op != DELETE:
                    right.append([])
                if not left[-1] and not right[-1]:
                    if left[:-1] or right[:-1]:
                        rows.append(Row(left[:-1], right[:-1]))
                    left, right = [[]], [[]]
            if part:
                if op != INSERT:
                    left[-1].append((op, part))
                if op != DELETE:
                    right[-1].append((op, part))
    left, right = [line for line in left if line], [line for line in right if line]
    if left or right:
        rows.append(Row(left, right))
    return _pair(rows)


def _pair(rows: list[Row]) -> list[Row]:
    out: list[Row] = []
    i = 0
    while i < len(rows):
        removed = []
        while i < len(rows) and rows[i].kind == "removed":
            removed.append(rows[i])
            i += 1
        added = []
        while i < len(rows) and rows[i].kind == "added":
            added.append(rows[i])
            i += 1
        for old, new in zip_longest(removed, added):
            out.append(Row(old.left if old else [], new.right if new else []))
        if not removed and not added:
            out.append(rows[i])
            i += 1
    return out


def fold(items: list, context: int = CONTEXT) -> list[tuple[str, object]]:
    """[("show", item) | ("fold", [items])]: stretches of MIN_FOLD or more unchanged items further
    than `context` from a change are folded (the page shows them in a <details>). With no change
    at all, nothing folds."""
    changed = [i for i, item in enumerate(items) if item.changed]
    if not changed:
        return [("show", item) for item in items]
    near = set()
    for i in changed:
        near.update(range(i - context, i + context + 1))
    out: list[tuple[str, object]] = []
    hidden: list = []
    for i, item in enumerate(items + [None]):
        if i in near or item is None:
            if len(hidden) >= MIN_FOLD:
                out.append(("fold", hidden))
            else:
                out.extend(("show", h) for h in hidden)
            hidden = []
            if item is not None:
                out.append(("show", item))
        else:
            hidden.append(item)
    return out


class Marker:
    """Marks a target's keywords (or a search phrase) in escaped text with <mark>."""

    def __init__(self, phrases: list[str]):
        words = [r"\s+".join(map(re.escape, p.split())) for p in phrases if p.strip()]
        self.regex = re.compile("|".join(sorted(words, key=len, reverse=True)), re.IGNORECASE) if words else None

    def __call__(self, text: str) -> Markup:
        if self.regex is None:
            return escape(text)
        out, pos = [], 0
        for match in self.regex.finditer(text):
            out.append(escape(text[pos:match.start()]))
            out.append(Markup("<mark>%s</mark>") % match.group())
            pos = match.end()
        out.append(escape(text[pos:]))
        return Markup("").join(out)


def utc(when: datetime) -> datetime:
    return when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when.astimezone(timezone.utc)


def time_tag(when: datetime | str | None, seconds: bool = False) -> Markup:
    """<time> in UTC (a datetime, or an ISO 8601 string as in the JSON shapes); the page's script
    rewrites the text to the viewer's time zone and keeps the UTC time in the title (hover)."""
    if not when:
        return Markup('<span class="none">never</span>')
    when = utc(datetime.fromisoformat(when) if isinstance(when, str) else when)
    full = f"{when:%Y-%m-%d %H:%M:%S}"
    # Only digits and separators from strftime: nothing to escape.
    return Markup(f'<time datetime="{when:%Y-%m-%dT%H:%M:%S}Z" title="{full} UTC"'
                  f'{" data-seconds" if seconds else ""}>{full if seconds else full[:16]} UTC</time>')
