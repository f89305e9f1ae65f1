"""The JSON shapes that `--json` prints and the web API serves, as pydantic models.

monitor/report.py builds these documents as plain dicts; the models here describe them, once, for
both readers: the API declares them in its OpenAPI document, and the tests check the CLI's output
and the API's answers against that document. Times are UTC, ISO 8601 with `Z`.
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from . import kinds

UTC_TIME = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$"


class Shape(BaseModel):
    model_config = ConfigDict(extra="forbid")


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


class TargetChange(Change):
    """A change with the name of its target (lists across targets)."""

    target: str


class Event(Shape):
    id: int
    kind: Literal[kinds.EVENTS]
    created_at: str = _time()
    summary: str
    change_id: int | None


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


class Check(Shape):
    at: str = _time()
    until: str = _time()
    count: int = Field(description="unchanged checks in a row share one row")
    outcome: Literal["first", "changed", "unchanged", "error", "missing"]
    http_status: int | None
    error: str | None
    version: int | None
    duration_ms: int


class History(Shape):
    target: Target
    changes: list[Change]
    events: list[Event]
    versions: list[Version]
    checks: list[Check]


class Diff(Shape):
    target: str
    from_version: int
    to_version: int
    ops: list[tuple[Literal[-1, 0, 1], str]] = Field(
        description="[op, text]: -1 removed, 0 kept, 1 added; every block ends in a newline")
    stats: Stats
    fallback: bool


class VersionText(Shape):
    target: str
    version: int
    first_seen: str = Field(description="ISO 8601 with the UTC offset")
    title: str
    blocks: list[str]


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


class Error(Shape):
    detail: str
