"""Search over stored text: "which pages ever said 'facial recognition'?"

A phrase matches case-insensitively, with any run of whitespace between its words. There is no
index yet: each search scans every distinct version text of every target (decoded texts are kept
in Texts' LRU cache, and a text shared by several versions is searched once). For each target
with a match it reports the versions that contained the phrase as runs (v1–v1, v3–v4), the
change where each run began and the one that ended it, and whether the latest version still
says it.
"""
from __future__ import annotations

import re
from itertools import groupby

from sqlmodel import select

from .. import schema
from ..models import Change, Target, Version
from ..times import iso
from ..store import Store
from .texts import Texts

MIN_CHARS = 2
SNIPPET_CHARS = 90


def pattern(phrase: str) -> re.Pattern | None:
    words = phrase.split()
    if len("".join(words)) < MIN_CHARS:
        return None
    return re.compile(r"\s+".join(map(re.escape, words)), re.IGNORECASE)


def snippet(text: str, match: re.Match) -> str:
    """The matching line, cut to about SNIPPET_CHARS either side of the match."""
    start = text.rfind("\n", 0, match.start()) + 1
    end = text.find("\n", match.end())
    end = len(text) if end < 0 else end
    left = max(start, match.start() - SNIPPET_CHARS)
    right = min(end, match.end() + SNIPPET_CHARS)
    if left > start:
        left = text.find(" ", left, match.start()) + 1 or left
    return ("…" if left > start else "") + text[left:right] + ("…" if right < end else "")


def search(store: Store, texts: Texts, phrase: str) -> list[dict]:
    """Targets whose stored text ever contained `phrase` (schema.SearchHit documents), by target name."""
    regex = pattern(phrase)
    if regex is None:
        return []
    with store.engine.connect() as conn:
        targets = {t.id: t for t in conn.execute(select(Target.id, Target.name, Target.url))}
        rows = list(conn.execute(select(Version.target_id, Version.id, Version.seq, Version.text_sha,
                                        Version.first_seen, Version.last_seen)
                                 .order_by(Version.target_id, Version.seq)))
        made_by = {to: (change, kind) for to, change, kind in
                   conn.execute(select(Change.to_version_id, Change.id, Change.kind)).all()}
    found: dict[str, re.Match | None] = {}
    hits = []
    for target_id, group in groupby(rows, key=lambda r: r.target_id):
        group = list(group)
        for row in group:
            if row.text_sha not in found:
                found[row.text_sha] = regex.search(texts.text(row.text_sha))
        matching = [r for r in group if found[r.text_sha]]
        if not matching:
            continue
        latest = matching[-1]
        target = targets[target_id]
        hits.append(schema.SearchHit(
            target=target.name, url=target.url, versions=[r.seq for r in matching], runs=_runs(group, found, made_by),
            present_now=latest is group[-1], first_seen=iso(matching[0].first_seen), last_seen=iso(latest.last_seen),
            snippet=snippet(texts.text(latest.text_sha), found[latest.text_sha])).doc())
    return sorted(hits, key=lambda h: h["target"])


def _runs(group: list, found: dict, made_by: dict[int, tuple[int, str]]) -> list[dict]:
    """Consecutive versions that contained the phrase, with the changes that began and ended each run."""
    runs: list[dict] = []
    previous = False
    for row in group:
        present = bool(found[row.text_sha])
        change, kind = made_by.get(row.id, (None, None))
        if present and not previous:
            runs.append({"first_version": row.seq, "last_version": row.seq, "appeared_in_change": change,
                         "appeared_as": kind, "removed_in_change": None})
        elif present:
            runs[-1]["last_version"] = row.seq
        elif previous:
            runs[-1]["removed_in_change"] = change
        previous = present
    return runs
