"""The JSON shapes that `--json` prints and the web API serves, as pydantic models.

Each document is built from these models (their `of` constructors read the stored rows, as
monitor/read.py returns them) and written out by `doc()`, so what is served is what is described:
the API declares the models in its OpenAPI document, and the tests check the CLI's output and the
API's answers against that document. Times are UTC, ISO 8601 with `Z`.
"""
from __future__ import annotations

from typing import Literal
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field

from . import kinds
from .times import iso

UTC_TIME = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$"


class Shape(BaseModel):
    model_config = ConfigDict(extra="forbid")

    def doc(self) -> dict:
        """The JSON document: only the keys given (a first version's `stats` stay `{}`)."""
        return self.model_dump(mode="json", exclude_unset=True)


def _time(description: str = ""):
    return Field(pattern=UTC_TIME, description=description or None, json_schema_extra={"format": "date-time"})


class Target(Shape):
    name: str
    url: str
    site: str | None = Field(description="the site whose feeds or sitemaps listed this post; null for a "
                                         "target from [[targets]]")
    published: str | None = _time("when the post was published, as its feed or sitemap said")
    active: bool = Field(description="false once the target is no longer in the config (its history is kept), "
                                     "or when it turned out to duplicate another (same post at another URL)")
    status: Literal["new", "ok", "error", "gone", "paused"] = Field(
        description="`paused`: its [[targets]] entry, or its site, is paused (`monitor pause`)")
    interval_s: float = Field(description="the current interval; a site's posts adapt it")
    last_check: str | None = _time()
    last_ok: str | None = _time()
    last_change: str | None = _time()
    next_due: str | None = _time()
    last_error: str | None
    versions: int
    changes: int = Field(description="changes other than the first version")

    @classmethod
    def of(cls, row, versions: int = 0, changes: int = 0, site: str | None = None, paused: bool = False) -> "Target":
        return cls(name=row.name, url=row.url, site=site, published=iso(row.published_at), active=row.active,
                   status="paused" if paused else row.status, interval_s=row.interval_s,
                   last_check=iso(row.last_check_at), last_ok=iso(row.last_ok_at),
                   last_change=iso(row.last_change_at), next_due=iso(row.next_due_at), last_error=row.last_error,
                   versions=versions, changes=changes)


class Stats(Shape):
    """Word, block and character counts of a change (empty for a target's first version)."""

    words_removed: int = 0
    words_added: int = 0
    words_before: int = 0
    words_after: int = 0
    blocks_removed: int = 0
    blocks_added: int = 0
    blocks_changed: int = 0
    blocks_moved: int = 0
    chars_removed: int = 0
    chars_added: int = 0
    fallback: bool = Field(False, description="some stretch had to be diffed coarsely (a very large page)")


class Passage(Shape):
    removed: str
    added: str
    before: str = Field(description="about a sentence of kept text before the change")
    after: str = Field(description="about a sentence of kept text after the change")


ChangeKind = Literal[kinds.CHANGES]  # (the names in monitor/kinds.py)


class Change(Shape):
    id: int
    kind: ChangeKind
    from_version: int | None
    to_version: int
    restored_version: int | None = Field(description="for `restored`: the earlier version the text equals")
    detected_at: str = _time()
    summary: str
    score: float = Field(ge=0, le=1, description="share of the text that changed, lifted for whole paragraphs")
    stats: Stats
    passages: list[Passage]
    archive_url: str | None = Field(None, description="the Wayback Machine's capture of the page taken when the "
                                                      "change was seen ([monitor] save_page_now), once it is done")

    @classmethod
    def of(cls, row, seq_of: dict[int, int], **more) -> "Change":
        """A change row; seq_of: version id -> number."""
        return cls(id=row.id, kind=row.kind, from_version=seq_of.get(row.from_version_id),
                   to_version=seq_of.get(row.to_version_id), restored_version=seq_of.get(row.restored_version_id),
                   detected_at=iso(row.detected_at), summary=row.summary, score=row.score, stats=row.stats or {},
                   passages=row.passages or [], archive_url=getattr(row, "archive_url", None), **more)


class TargetChange(Change):
    """A change with the name of its target (lists across targets)."""

    target: str


class Event(Shape):
    id: int
    kind: Literal[kinds.EVENTS]
    created_at: str = _time()
    summary: str
    change_id: int | None

    @classmethod
    def of(cls, row) -> "Event":
        return cls(id=row.id, kind=row.kind, created_at=iso(row.created_at), summary=row.summary,
                   change_id=row.change_id)


class Timestamp(Shape):
    stamped_at: str = _time("the time the TSA vouches for (its genTime)")
    tsa_url: str
    token: str = Field(description="where the web UI serves the token (the TSA's RFC 3161 reply, .tsr): check "
                                   "it with `openssl ts -verify -digest <record_sha256> -in token.tsr -CAfile …`")

    @classmethod
    def of(cls, row, name: str) -> "Timestamp":
        return cls(stamped_at=iso(row.stamped_at), tsa_url=row.tsa_url,
                   token=f"/targets/{quote(name, safe='')}/timestamps/{row.head}.tsr")


class Version(Shape):
    version: int
    first_seen: str = _time()
    last_seen: str = _time()
    times_seen: int
    http_status: int | None
    final_url: str | None
    title: str
    words: int
    blocks: int
    text_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    raw_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    screenshot_sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$", description=(
        'fetcher = "browser": the full-page screenshot (PNG) in the snapshot store; null otherwise'))
    response_sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$", description=(
        'fetcher = "browser": the document\'s HTTP response before rendering (raw_sha256 is then the '
        "rendered HTML); null otherwise"))
    source: Literal["warc", "wayback"] | None = Field(None, description=(
        "where an imported capture came from (`monitor import-warc`, `monitor import-wayback`); null when "
        "monitor fetched it"))
    source_url: str | None = Field(None, description="the WARC file and record, or the archive's address of the "
                                                     "capture; null when monitor fetched it")
    chain_previous: str | None = Field(None, pattern=r"^[0-9a-f]{64}$", description=(
        "the SHA-256 of the previous version's record (64 zeros for the first): its hash-chain link, "
        "checked by `monitor verify`"))
    record_sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$", description=(
        "the SHA-256 of this version's record: the chain head while it is the newest version, and the "
        "digest a trusted timestamp of that head covers"))
    timestamp: Timestamp | None = Field(None, description=(
        "the earliest RFC 3161 trusted timestamp of record_sha256 (`[monitor] timestamp_url`, "
        "`monitor timestamp`); null when none was taken while this version was the newest"))

    @classmethod
    def of(cls, row, name: str | None = None, stamps: dict | None = None) -> "Version":
        """`name` and `stamps` (timestamps.by_head of the target) add the record digest and its timestamp."""
        extra = {}
        if name is not None:
            from .chain import digest

            record = digest(row)
            stamp = (stamps or {}).get(record)
            extra = {"record_sha256": record, "timestamp": Timestamp.of(stamp, name) if stamp else None}
        return cls(version=row.seq, first_seen=iso(row.first_seen), last_seen=iso(row.last_seen),
                   times_seen=row.times_seen, http_status=row.http_status, final_url=row.final_url, title=row.title,
                   words=row.words, blocks=row.blocks, text_sha256=row.text_sha, raw_sha256=row.raw_sha,
                   screenshot_sha256=row.screenshot_sha, response_sha256=row.response_sha, source=row.source,
                   source_url=row.source_url, chain_previous=row.previous_sha, **extra)


class Check(Shape):
    at: str = _time()
    until: str = _time()
    count: int = Field(description="unchanged checks in a row share one row")
    outcome: Literal["first", "changed", "unchanged", "error", "missing"]
    http_status: int | None
    error: str | None
    version: int | None
    duration_ms: int

    @classmethod
    def of(cls, row, seq_of: dict[int, int]) -> "Check":
        return cls(at=iso(row.at), until=iso(row.until), count=row.count, outcome=row.outcome,
                   http_status=row.http_status, error=row.error, version=seq_of.get(row.version_id),
                   duration_ms=row.duration_ms)


class History(Shape):
    target: Target
    versions: list[Version]
    changes: list[Change]
    events: list[Event]
    checks: list[Check]


class Diff(Shape):
    target: str
    from_version: int
    to_version: int
    ops: list[tuple[Literal[-1, 0, 1], str]] = Field(
        description="[op, text]: -1 removed, 0 kept, 1 added; every block ends in a newline")
    stats: Stats
    fallback: bool

    @classmethod
    def of(cls, name: str, old, new, result: dict) -> "Diff":
        """A word diff (report.diff_texts' result) between two version rows of a target."""
        return cls(target=name, from_version=old.seq, to_version=new.seq, **result)


class VersionText(Shape):
    target: str
    version: int
    first_seen: str = Field(description="ISO 8601 with the UTC offset")
    title: str
    blocks: list[str]

    @classmethod
    def of(cls, name: str, row, doc) -> "VersionText":
        """A version row's extracted text (doc: extract.parse_text's result)."""
        return cls(target=name, version=row.seq, first_seen=iso(row.first_seen), title=doc.title, blocks=doc.blocks)


class Alert(Shape):
    id: int
    channel: str
    state: Literal["pending", "sent", "failed"]
    priority: bool
    attempts: int
    redelivered: int = Field(description="sends repeated because an earlier send was cut short (the process "
                                         "died before marking it): the receiver may have it twice")
    created_at: str = _time()
    next_attempt_at: str | None = _time("only while pending")
    sent_at: str | None = _time()
    last_error: str | None
    target: str
    kind: str
    summary: str
    change_id: int | None

    @classmethod
    def of(cls, row) -> "Alert":
        """An alert row with its event's kind, summary and change_id and its target's name (read.alerts)."""
        return cls(id=row.id, channel=row.channel, state=row.state, priority=row.priority, attempts=row.attempts,
                   redelivered=row.redelivered, created_at=iso(row.created_at),
                   next_attempt_at=iso(row.next_attempt_at) if row.state == "pending" else None,
                   sent_at=iso(row.sent_at), last_error=row.last_error, target=row.target, kind=row.kind,
                   summary=row.summary, change_id=row.change_id)


class SearchRun(Shape):
    """Consecutive versions that all contained the phrase."""

    first_version: int
    last_version: int
    appeared_in_change: int | None = Field(description="the change that made first_version")
    appeared_as: str | None = Field(None, description="that change's kind (`first`, `added`, `edited`, ...; `restored` when "
                                                      "the phrase came back with an earlier text")
    removed_in_change: int | None = Field(description="the change after last_version, if the phrase went away")


class SearchHit(Shape):
    """A target whose stored text contained the phrase, and in which versions."""

    target: str
    url: str
    versions: list[int] = Field(description="the versions whose text contains the phrase, oldest first")
    runs: list[SearchRun]
    present_now: bool = Field(description="the latest version still contains it")
    first_seen: str = _time("when the first matching version was first seen")
    last_seen: str = _time("when the last matching version was last seen")
    snippet: str = Field(description="the phrase with some text around it, from the latest matching version")


class SiteSource(Shape):
    """One feed or sitemap (a sitemap index's children included) as the last discovery read it."""

    url: str
    urls: int | None = Field(description="post URLs (or child sitemaps) it listed when last read in full")
    error: str | None


class Site(Shape):
    name: str
    feeds: list[str]
    sitemaps: list[str]
    posts: int = Field(description="posts watched (active targets of this site)")
    unchecked: int = Field(description="posts discovered but not checked yet")
    gone: int = Field(description="posts that answered 404/410 on gone_after checks in a row")
    duplicates: int = Field(description="URLs folded into another target (redirects, canonical links)")
    status: Literal["new", "ok", "error"] = Field(description="how the last discovery went")
    last_discovery: str | None = _time()
    next_discovery: str | None = _time()
    last_error: str | None
    sources: list[SiteSource]

    @classmethod
    def of(cls, site, row, counts: dict[str, int]) -> "Site":
        """A configured site (its name, feeds and sitemaps), its row (None before its first
        discovery) and its post counts (Store.post_counts)."""
        sources = (row.sources or {}) if row else {}
        return cls(name=site.name, feeds=site.feeds, sitemaps=site.sitemaps, posts=counts.get("posts", 0),
                   unchecked=counts.get("new", 0), gone=counts.get("gone", 0), duplicates=counts.get("aliases", 0),
                   status=row.status if row else "new", last_discovery=iso(row.last_discovery_at) if row else None,
                   next_discovery=iso(row.next_discovery_at) if row else None,
                   last_error=row.last_error if row else None,
                   sources=[SiteSource(url=url, urls=info.get("urls"), error=info.get("error"))
                            for url, info in sources.items()])


class Error(Shape):
    detail: str
