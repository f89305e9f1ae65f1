"""Captures from elsewhere (a WARC file, the Wayback Machine) merged into a target's history.

Each capture is read as a live check would read it (the target's selector and rules, error
pages refused) and placed at its own capture time:
- a capture whose text equals that of the version before it in time is another sighting of
  that version (its `last_seen` moves on), as an unchanged check would be;
- any other capture becomes a version, with its source and where it came from.
Then the target's timeline is rebuilt (`rebuild`): versions numbered in capture-time order, the
hash chain re-linked, and every change decided again by monitor/detect.py over the merged
timeline, so a removal and a restore that happened before watching began come out as `removed`
and `restored`. Changes made here raise no event (they are history, not news).

Importing the same capture again adds nothing: its bytes are already a version, or its time
is already inside a version's sightings, or its source URL was already imported.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timezone

from sqlalchemy import func, select, update

from . import chain, detect
from .decoding import binary_kind, decode
from .extract import ExtractError, Extracted, extract, parse_text, settings_key
from .models import Change, Target, Version
from .results import Earlier, Verdict
from .snapshots import SnapshotError
from .store import Store, StoreError, TargetState

SOURCES = {"warc": "a WARC file", "wayback": "the Wayback Machine"}


class MergeError(Exception):
    """The target cannot take imported captures now (the message names it and why)."""


@dataclass
class Found:
    """A capture from elsewhere: when it was taken, of which URL, and what was answered."""

    captured_at: datetime
    url: str
    body: bytes
    http_status: int | None
    headers: dict
    source: str  # one of SOURCES
    source_url: str  # the WARC file and record, or the archive's address of the capture


@dataclass
class Outcome:
    """What an import did to one target."""

    target: str
    added: list[datetime] = field(default_factory=list)  # new versions, by capture time
    seen: int = 0  # captures that were another sighting of a version's text
    known: int = 0  # captures already stored
    skipped: list[str] = field(default_factory=list)  # why each refused capture was refused
    kinds: list[str] = field(default_factory=list)  # the merged timeline's change kinds, oldest first


def _utc(when: datetime) -> datetime:
    return when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when.astimezone(timezone.utc)


class Merger:
    """Imports into one target (`watch`: its configured settings) while holding its claim, so no
    check of it runs meanwhile; `close()` rebuilds the timeline and releases the claim."""

    def __init__(self, store: Store, watch, state: TargetState):
        self.store, self.watch, self.state = store, watch, state
        self.rules = list(state.rules or []) if watch.learn else []
        self.key = settings_key(watch.selector, watch.ignore, watch.ignore_text, self.rules)
        self.outcome = Outcome(state.name)
        if state.id not in store.claim_targets([state.id]):
            raise MergeError(f"{state.name}: being checked by another process; try again in a moment")
        problem = chain.verify(store, state.id, state.name, snapshots=False).problem
        if problem:
            store.release_targets([state.id])
            raise MergeError(f"{state.name}: its hash chain is broken ({problem}); importing would re-link it "
                             "and hide that: see `monitor verify`")
        with store.engine.connect() as conn:
            self.sources = set(conn.execute(select(Version.source_url).where(
                Version.target_id == state.id, Version.source_url.is_not(None))).scalars())

    def imported(self, source_url: str) -> bool:
        return source_url in self.sources

    def add(self, found: Found) -> str:
        """Store one capture; returns what became of it: added, seen, known or skipped: why."""
        at = _utc(found.captured_at)
        if self.imported(found.source_url):
            self.outcome.known += 1
            return "known"
        content_type = next((v for k, v in found.headers.items() if k.lower() == "content-type"), None)
        why = binary_kind(found.body, content_type)
        if why:
            return self._skip(found, f"{why}, not a web page")
        try:
            page = extract(decode(found.body, content_type)[0], self.watch.selector, self.watch.ignore,
                           self.watch.ignore_text, url=found.url, rules=self.rules)
        except ExtractError as exc:
            return self._skip(found, str(exc))
        except Exception as exc:  # the parser choking on hostile markup
            return self._skip(found, f"could not parse the page: {type(exc).__name__}: {exc}")
        error = (("page has no text content", True) if not page.blocks
                 else detect.error_page(page.title, page.blocks, None))
        if error:
            return self._skip(found, error[0])
        text = page.text()
        text_sha = hashlib.sha256(text.encode("utf-8")).hexdigest()
        raw_sha = hashlib.sha256(found.body).hexdigest()
        with self.store.engine.begin() as conn:
            before = conn.execute(select(Version.id, Version.text_sha, Version.last_seen, Version.raw_sha).where(
                Version.target_id == self.state.id, Version.first_seen <= at)
                .order_by(Version.first_seen.desc(), Version.id.desc()).limit(1)).first()
            if before is not None and before.text_sha == text_sha:
                if _utc(before.last_seen) < at:
                    conn.execute(update(Version).where(Version.id == before.id).values(
                        last_seen=at, times_seen=Version.times_seen + 1))
                    self.outcome.seen += 1
                    return "seen"
                self.outcome.known += 1
                return "known"
            same = conn.execute(select(Version.seq).where(Version.target_id == self.state.id,
                                                          Version.raw_sha == raw_sha)).first()
        if same is not None:
            self.outcome.known += 1
            return "known"
        self._store(found, at, page, text, text_sha, raw_sha, before.raw_sha if before else None)
        self.sources.add(found.source_url)
        self.outcome.added.append(at)
        return "added"

    def _skip(self, found: Found, why: str) -> str:
        self.outcome.skipped.append(f"{found.source_url}: {why}")
        return f"skipped: {why}"

    def _store(self, found: Found, at: datetime, page: Extracted, text: str, text_sha: str, raw_sha: str,
               base: str | None) -> None:
        """A new version at the end of the chain (numbered in time order by `rebuild`)."""
        snapshots = self.store.snapshots
        snapshots.put(found.body, raw_sha, base=snapshots.keyframe(base))
        snapshots.put(text.encode("utf-8"), text_sha, base=raw_sha)
        with self.store.engine.begin() as conn:
            seq = (conn.execute(select(func.max(Version.seq)).where(Version.target_id == self.state.id)).scalar()
                   or 0) + 1
            link = chain.next_link(conn, self.state.id)
            conn.execute(Version.__table__.insert().values(
                target_id=self.state.id, seq=seq, text_sha=text_sha, raw_sha=raw_sha, first_seen=at, last_seen=at,
                times_seen=1, http_status=found.http_status, final_url=found.url, headers=found.headers,
                title=page.title, words=page.word_count, blocks=len(page.blocks), extract_key=self.key,
                previous_sha=link, source=found.source, source_url=found.source_url))
            conn.execute(update(Target).where(Target.id == self.state.id).values(
                chain_head=chain.link_of(at, found.url, raw_sha, text_sha, link)))

    def close(self) -> Outcome:
        try:
            self.outcome.kinds = rebuild(self.store, self.watch, self.state.id, self.state.name)
        finally:
            self.store.release_targets([self.state.id])
        return self.outcome


def _lines(store: Store, watch, version, key: str, rules: list) -> list[str]:
    """A version's text as the current settings read it (its stored text when they are the same)."""
    if version.extract_key == key:
        return parse_text(store.snapshots.get_text(version.text_sha)).lines
    html = decode(store.snapshots.get(version.raw_sha), (version.headers or {}).get("content-type"))[0]
    return extract(html, watch.selector, watch.ignore, watch.ignore_text, url=version.final_url, rules=rules).lines


def _fingerprint(lines: list[str]) -> str:
    return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()


def _verdict(previous_lines, lines, earlier, previous, version, words: int) -> Verdict:
    if previous_lines is None:
        return detect.first_version(words)
    if previous_lines == lines:
        source = SOURCES.get(version.source or previous.source or "", "a check")
        return Verdict("rebaselined", f"the same text as v{previous.seq}: another capture of it (from {source})",
                       alert=False)
    return detect.compare(previous_lines, lines, earlier)


def rebuild(store: Store, watch, target_id: int, name: str) -> list[str]:
    """Renumber a target's versions in capture-time order, re-link its hash chain, and decide
    every change again over that timeline. Returns the change kinds, oldest first."""
    with store.engine.connect() as conn:
        target = conn.execute(select(Target.rules, Target.last_version_id).where(Target.id == target_id)).first()
    rules = list(target.rules or []) if watch.learn else []
    key = settings_key(watch.selector, watch.ignore, watch.ignore_text, rules)
    with store.engine.connect() as conn:
        versions = conn.execute(select(*Version.__table__.columns).where(Version.target_id == target_id)
                                .order_by(Version.first_seen, Version.id)).all()
        changes = {c.to_version_id: c.id for c in conn.execute(
            select(Change.id, Change.to_version_id).where(Change.target_id == target_id))}
    verdicts: list[tuple] = []
    seen: dict[str, Earlier] = {}
    previous = previous_lines = None
    for position, version in enumerate(versions, start=1):
        try:
            lines = _lines(store, watch, version, key, rules)
        except (SnapshotError, OSError, ExtractError) as exc:
            raise StoreError(f"{name}: v{version.seq} cannot be read again ({exc}); its history was not "
                             "rebuilt (see `monitor verify`)") from None
        mark = _fingerprint(lines)
        earlier = seen.get(mark)
        verdict = _verdict(previous_lines, lines, earlier, previous, version, version.words)
        verdicts.append((position, version, previous, verdict))
        seen.setdefault(mark, Earlier(version.id, position, version.first_seen))
        previous, previous_lines = version, lines
    with store.engine.begin() as conn:
        if any(v.seq != position for position, v, _, _ in verdicts):
            conn.execute(update(Version).where(Version.target_id == target_id).values(seq=-Version.seq))
            for position, version, _, _ in verdicts:
                conn.execute(update(Version).where(Version.id == version.id).values(seq=position))
        for position, version, before, verdict in verdicts:
            restored = verdict.restored.version_id if verdict.restored else None
            values = dict(from_version_id=before.id if before else None, kind=verdict.kind, summary=verdict.summary,
                          score=verdict.score, stats=verdict.stats, passages=verdict.passages,
                          restored_version_id=restored)
            if version.id in changes:
                conn.execute(update(Change).where(Change.id == changes[version.id]).values(**values))
            else:
                conn.execute(Change.__table__.insert().values(target_id=target_id, to_version_id=version.id,
                                                              detected_at=version.first_seen, **values))
            if version.same_as_id != restored:
                conn.execute(update(Version).where(Version.id == version.id).values(same_as_id=restored))
        chain.relink(conn, target_id)
        if versions and versions[-1].id != target.last_version_id:
            newest = versions[-1]
            conn.execute(update(Target).where(Target.id == target_id).values(
                last_version_id=newest.id, last_raw_sha=newest.raw_sha, etag=None, last_modified=None))
    return [verdict.kind for _, _, _, verdict in verdicts]
