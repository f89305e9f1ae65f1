"""What the store takes and gives: small typed records, and its errors."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .models import Target


class StoreError(Exception):
    pass


class ClaimLost(StoreError):
    """Another process took over a target while this one was checking it (the claim expired)."""


class NameTaken(StoreError):
    """A configured target's name is already a discovered post's."""


@dataclass(frozen=True)
class Watched:
    """A configured target as the targets table keeps it (see sync_targets)."""

    name: str
    url: str
    interval_s: float


@dataclass(frozen=True)
class Attempt:
    """One check's try: when it ran, how long it took, and the HTTP status it got (if any)."""

    at: datetime
    duration_ms: int
    http_status: int | None = None


@dataclass(frozen=True)
class Failure:
    """Why a check failed, and what makes repeated failures a page gone."""

    error: str
    gone_after: int  # answers of 404/410 in a row that make the page gone
    missing: bool = False  # this answer was 404/410
    gone_summary: str | None = None  # the 'gone' event's words (default: the page's)


@dataclass
class Capture:
    """One fetched page and the text extracted from it: what a new version is made of."""

    raw: bytes
    raw_sha: str
    text: str
    text_sha: str
    title: str
    words: int
    blocks: int
    extract_key: str
    http_status: int | None
    final_url: str | None
    headers: dict
    etag: str | None
    last_modified: str | None
    screenshot: bytes | None = None  # the browser fetcher's full-page PNG
    response: bytes | None = None  # the browser fetcher's: the document's HTTP response before rendering


@dataclass
class Due:
    """When a target is checked next, and the pace behind it (kept for adaptive intervals)."""

    at: datetime | None
    interval: float
    streak: int = 0  # unchanged checks in a row


@dataclass
class TargetState:
    """What a check needs to know about a target before fetching it."""

    id: int
    name: str
    status: str
    etag: str | None
    last_modified: str | None
    last_raw_sha: str | None
    last_version_id: int | None
    last_check_id: int | None
    last_outcome: str | None
    consecutive_errors: int
    consecutive_missing: int
    next_due_at: datetime | None
    rules: list | None = None
    path_strikes: dict | None = None
    url: str = ""
    site_id: int | None = None
    published_at: datetime | None = None
    created_at: datetime | None = None
    last_change_at: datetime | None = None
    unchanged_streak: int = 0
    baseline: bool = False


_STATE_COLUMNS = (Target.id, Target.name, Target.status, Target.etag, Target.last_modified, Target.last_raw_sha,
                  Target.last_version_id, Target.last_check_id, Target.last_outcome, Target.consecutive_errors,
                  Target.consecutive_missing, Target.next_due_at, Target.rules, Target.path_strikes, Target.url,
                  Target.site_id, Target.published_at, Target.created_at, Target.last_change_at,
                  Target.unchanged_streak, Target.baseline)

BATCH_SIZE = 500  # rows written or claimed in one statement
