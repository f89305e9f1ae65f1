"""The data model: Target -> Check (every fetch) and Version (every distinct text, in order) ->
Change (from, to) -> Event (what alerting reads).

Times are timezone-aware UTC. JSON columns hold small documents (headers, stats, passages); full texts
and raw bodies live in the snapshot store, named by SHA-256.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import JSON, Column, ForeignKey, Index, Integer, LargeBinary, UniqueConstraint, false
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Site(SQLModel, table=True):
    """A whole blog watched through its feeds and sitemaps; its posts are targets with site_id set."""

    __tablename__ = "sites"
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, index=True)
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow)
    status: str = "new"  # new | ok | error (the last discovery)
    last_discovery_at: datetime | None = None
    next_discovery_at: datetime | None = None
    last_error: str | None = None
    discoveries: int = 0
    # Per feed/sitemap URL: {"etag", "last_modified", "error", "urls"} for conditional requests
    # and for `monitor sites`.
    sources: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    # The process discovering it now and until when, as for a target's check (monitor/lease.py).
    claimed_by: str | None = None
    claimed_until: datetime | None = None


class Target(SQLModel, table=True):
    __tablename__ = "targets"
    __table_args__ = (Index("ix_targets_site_due", "site_id", "next_due_at"),)
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, index=True)
    url: str
    active: bool = True
    # A discovered post: its site, when it was published (from the feed or sitemap), when a
    # discovery last listed it, whether it was there at the site's first discovery (then no
    # 'new_post' event), and the target it turned out to duplicate (by redirect or canonical URL).
    site_id: int | None = Field(default=None, sa_column=Column(
        Integer, ForeignKey("sites.id", name="fk_targets_site_id"), nullable=True))
    published_at: datetime | None = None
    listed_at: datetime | None = None
    baseline: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
    alias_of: int | None = None
    unchanged_streak: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    created_at: datetime = Field(default_factory=utcnow)
    interval_s: float = 900.0
    next_due_at: datetime | None = None
    status: str = "new"  # new | ok | error | gone
    last_check_at: datetime | None = None
    last_ok_at: datetime | None = None
    last_change_at: datetime | None = None
    last_error: str | None = None
    consecutive_errors: int = 0
    consecutive_missing: int = 0
    etag: str | None = None
    last_modified: str | None = None
    last_raw_sha: str | None = None
    # Pointers to the newest rows; plain ids (no foreign key) to keep the tables free of cycles.
    last_version_id: int | None = None
    last_check_id: int | None = None
    last_outcome: str | None = None  # outcome of the check row last_check_id points at
    # Learned volatile blocks (monitor/volatile.py) and the per-path change counts behind them.
    rules: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    path_strikes: dict[str, int] = Field(default_factory=dict, sa_column=Column(JSON))
    # The process checking it now (monitor/lease.py: host:pid:start) and until when that claim
    # holds unless renewed; both None when no process is checking it.
    claimed_by: str | None = None
    claimed_until: datetime | None = None
    # The SHA-256 of the newest version's record (monitor/chain.py): the head of the hash chain.
    chain_head: str | None = None


class Version(SQLModel, table=True):
    __tablename__ = "versions"
    __table_args__ = (UniqueConstraint("target_id", "seq"),)
    id: int | None = Field(default=None, primary_key=True)
    target_id: int = Field(foreign_key="targets.id", index=True)
    seq: int
    text_sha: str = Field(index=True)
    raw_sha: str
    first_seen: datetime = Field(default_factory=utcnow)
    last_seen: datetime = Field(default_factory=utcnow)
    times_seen: int = 1
    http_status: int | None = None
    final_url: str | None = None
    headers: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    title: str = ""
    words: int = 0
    blocks: int = 0
    extract_key: str = ""
    same_as_id: int | None = Field(default=None, foreign_key="versions.id")
    # The browser fetcher's (monitor/browser.py; raw_sha is then the rendered HTML): a full-page
    # PNG of the page, and its document's HTTP response before rendering, both in the snapshot store.
    screenshot_sha: str | None = None
    response_sha: str | None = None
    # Evidence (monitor/chain.py): the SHA-256 of the previous version's record (chain.GENESIS
    # for the first), and where a capture came from when it was not fetched here: its `source`
    # ("warc" or "wayback") and `source_url` (the WARC file and record, or the archive's URL).
    previous_sha: str | None = None
    source: str | None = None
    source_url: str | None = None


class Change(SQLModel, table=True):
    __tablename__ = "changes"
    id: int | None = Field(default=None, primary_key=True)
    target_id: int = Field(foreign_key="targets.id", index=True)
    from_version_id: int | None = Field(default=None, foreign_key="versions.id")
    to_version_id: int = Field(foreign_key="versions.id")
    kind: str  # one of kinds.CHANGES
    restored_version_id: int | None = Field(default=None, foreign_key="versions.id")
    detected_at: datetime = Field(default_factory=utcnow)
    summary: str = ""
    score: float = 0.0
    stats: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    passages: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    # Save Page Now (monitor/alerts/archive.py): the public archive's copy of the page taken when
    # this change was seen, and the capture job while it runs.
    archive_url: str | None = None
    archive_job: str | None = None


class Check(SQLModel, table=True):
    __tablename__ = "checks"
    __table_args__ = (Index("ix_checks_target_at", "target_id", "at"),)
    id: int | None = Field(default=None, primary_key=True)
    target_id: int = Field(foreign_key="targets.id")
    at: datetime = Field(default_factory=utcnow)
    # Unchanged checks in a row share one row: `count` of them, the last at `until`.
    until: datetime = Field(default_factory=utcnow)
    count: int = 1
    duration_ms: int = 0
    http_status: int | None = None
    outcome: str  # first | changed | unchanged | error | missing
    error: str | None = None
    version_id: int | None = Field(default=None, foreign_key="versions.id")


class Event(SQLModel, table=True):
    __tablename__ = "events"
    id: int | None = Field(default=None, primary_key=True)
    target_id: int = Field(foreign_key="targets.id", index=True)
    change_id: int | None = Field(default=None, foreign_key="changes.id")
    kind: str  # one of kinds.EVENTS
    created_at: datetime = Field(default_factory=utcnow)
    summary: str = ""


class Alert(SQLModel, table=True):
    """The outbox: one row per (event, channel), written in the event's transaction, delivered
    by the worker with retries. At-least-once: a crash between sending and marking may resend."""

    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_state_next", "state", "next_attempt_at"),)
    id: int | None = Field(default=None, primary_key=True)
    event_id: int = Field(foreign_key="events.id", index=True)
    channel: str
    priority: bool = False
    state: str = "pending"  # pending | sent | failed
    attempts: int = 0
    created_at: datetime = Field(default_factory=utcnow)
    next_attempt_at: datetime = Field(default_factory=utcnow)
    sent_at: datetime | None = None
    last_error: str | None = None
    # The process sending it now, as for targets. `sending_at` is set just before each send and
    # cleared when the outcome is marked: found set by the next sender, the last send was cut
    # short and may have arrived, so that send counts in `redelivered` (possible duplicates).
    claimed_by: str | None = None
    claimed_until: datetime | None = None
    sending_at: datetime | None = None
    redelivered: int = Field(default=0, sa_column_kwargs={"server_default": "0"})


class Timestamp(SQLModel, table=True):
    """An RFC 3161 trusted timestamp of a target's chain head (monitor/timestamps.py): the TSA's
    signed reply, kept in the snapshot store by its SHA-256, the head it covers and the time it gives."""

    __tablename__ = "timestamps"
    id: int | None = Field(default=None, primary_key=True)
    target_id: int = Field(foreign_key="targets.id", index=True)
    head: str = Field(index=True)
    token_sha: str
    tsa_url: str
    stamped_at: datetime  # the TSA's time (genTime)
    received_at: datetime = Field(default_factory=utcnow)

# ---- the fleet: several workers sharing one database (monitor/fleet.py, monitor/blobs.py) ----

class Blob(SQLModel, table=True):
    """A snapshot kept in the database (`snapshots = "database"`): the same zstd payload a file
    of the file store holds, by the SHA-256 of its content."""

    __tablename__ = "blobs"
    digest: str = Field(primary_key=True)
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class Worker(SQLModel, table=True):
    """A running daemon (monitor/lease.py's host:pid:start) and its last heartbeat."""

    __tablename__ = "workers"
    id: str = Field(primary_key=True)
    host: str
    pid: int
    started_at: datetime
    beat_at: datetime
    checks: int = 0  # checks finished since it started
    in_flight: int = 0  # checks under way at its last beat


class Host(SQLModel, table=True):
    """A watched host as the whole fleet sees it: paused (it asked us to back off, until
    `paused_until`, a Unix time) and when its next request may start (`next_start`)."""

    __tablename__ = "hosts"
    host: str = Field(primary_key=True)
    paused_until: float | None = None
    why: str | None = None
    next_start: float | None = None


class HostSlot(SQLModel, table=True):
    """One of a host's `per_host` request places, held by a worker (`holder`) until a Unix time."""

    __tablename__ = "host_slots"
    host: str = Field(primary_key=True)
    slot: int = Field(primary_key=True)
    holder: str | None = None
    until: float | None = None
