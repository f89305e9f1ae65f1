"""Reading the stored history: one module for every reader (the CLI, the web pages, the JSON API
and the feeds). SQLAlchemy Core selects on the store's engine; nothing here writes.

Rows come back as read-only named tuples whose attributes are the column names (what
monitor/schema.py's `of` constructors and the templates read). Anything asked for that is not
there raises NotFound, with a message that names it.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func
from sqlmodel import select

from . import kinds
from .models import Alert, Change, Check, Event, Target, Timestamp, Version
from .store import Store

TARGET = tuple(Target.__table__.columns)
VERSION = tuple(Version.__table__.columns)
CHANGE = tuple(Change.__table__.columns)
# What a reviewer reads: not first versions, typography-only changes or re-extractions.
EDITS = kinds.EDITS
PROBLEMS = ("error", "gone", "recovered")  # events that are no change
# The largest id or number a row can have (a 64-bit SQL integer): a larger one from a URL names
# nothing, and the database driver would refuse it rather than find nothing.
MAX_INT = 2**63 - 1
MAX_DIGITS = 30


class NotFound(LookupError):
    """No such target, version or change (the message names it)."""


def target(store: Store, name: str):
    with store.engine.connect() as conn:
        row = conn.execute(select(*TARGET).where(Target.name == name)).first()
    if row is None:
        raise NotFound(f"no target named {name!r}")
    return row


def version_number(ref: str | int) -> int:
    """'3', 'v3' or 3 -> 3; NotFound for anything else.

    >>> version_number("v3"), version_number(3)
    (3, 3)
    >>> version_number("three")
    Traceback (most recent call last):
    ...
    monitor.read.NotFound: bad version 'three': use a number like 3 or v3
    """
    if isinstance(ref, int):
        return ref
    seq = ref.lstrip("vV")
    # ASCII digits only (str.isdigit also takes '١' or '３'), and few enough for int() to take.
    if not (seq.isascii() and seq.isdigit()) or len(seq) > MAX_DIGITS:
        raise NotFound(f"bad version {ref!r}: use a number like 3 or v3")
    return int(seq)


def version(store: Store, target_row, ref: str | int):
    """A target's version by number ('3', 'v3' or 3)."""
    seq = version_number(ref)
    row = None
    if 0 < seq <= MAX_INT:
        with store.engine.connect() as conn:
            row = conn.execute(select(*VERSION).where(Version.target_id == target_row.id, Version.seq == seq)).first()
    if row is None:
        raise NotFound(f"{target_row.name} has no version {ref}")
    return row


def latest_versions(store: Store, target_id: int, n: int = 2, below: int | None = None) -> list:
    """The newest `n` versions of a target (those before version `below`, if given), newest first."""
    query = select(*VERSION).where(Version.target_id == target_id)
    if below is not None:
        query = query.where(Version.seq < below)
    with store.engine.connect() as conn:
        return list(conn.execute(query.order_by(Version.seq.desc()).limit(n)))


def versions(store: Store, target_id: int) -> list:
    """All versions of a target, newest first."""
    with store.engine.connect() as conn:
        return list(conn.execute(select(*VERSION).where(Version.target_id == target_id).order_by(Version.seq.desc())))


TIMESTAMP = tuple(Timestamp.__table__.columns)


def stamps(store: Store, target_id: int, head: str | None = None) -> list:
    """A target's trusted timestamps (those of `head`), newest first."""
    query = select(*TIMESTAMP).where(Timestamp.target_id == target_id)
    if head is not None:
        query = query.where(Timestamp.head == head)
    with store.engine.connect() as conn:
        return list(conn.execute(query.order_by(Timestamp.stamped_at.desc(), Timestamp.id.desc())))


def stamps_by_head(store: Store, target_id: int) -> dict[str, object]:
    """The earliest trusted timestamp of each chain head of a target."""
    found: dict[str, object] = {}
    for row in reversed(stamps(store, target_id)):
        found.setdefault(row.head, row)
    return found


def seqs(conn, ids) -> dict[int, int]:
    ids = {i for i in ids if i is not None}
    if not ids:
        return {}
    return dict(conn.execute(select(Version.id, Version.seq).where(Version.id.in_(ids))).all())


@dataclass
class Overview:
    """A target as the dashboard lists it."""

    target: object
    versions: int
    changes: int
    last_edit: object | None  # the latest change a reviewer reads (not first/rebaselined)
    paused: bool = False  # its entry, or its site, is paused in the config
    site: str | None = None  # the site a discovered post belongs to


def overview(store: Store, include_inactive: bool = False, paused: frozenset[str] = frozenset()) -> list[Overview]:
    """The targets as the dashboard and `monitor targets` list them: the watched ones, the paused
    ones, and with include_inactive the rest."""
    numbers = counts(store)
    sites = store.site_names()
    held = lambda t: t.name in paused or (sites.get(t.site_id) in paused and t.alias_of is None)  # noqa: E731
    with store.engine.connect() as conn:
        query = select(*TARGET).order_by(Target.name)
        if not include_inactive and not paused:
            query = query.where(Target.active)
        targets = [t for t in conn.execute(query) if t.active or include_inactive or held(t)]
        latest = select(func.max(Change.id)).where(Change.kind.in_(EDITS)).group_by(Change.target_id)
        edits = {c.target_id: c for c in conn.execute(
            select(Change.id, Change.target_id, Change.kind, Change.summary, Change.detected_at)
            .where(Change.id.in_(latest)))}
    return [Overview(t, *numbers.get(t.id, (0, 0)), edits.get(t.id), paused=held(t), site=sites.get(t.site_id))
            for t in targets]


def counts(store: Store) -> dict[int, tuple[int, int]]:
    """target id -> (versions, changes other than the first version)."""
    with store.engine.connect() as conn:
        versions = dict(conn.execute(select(Version.target_id, func.count()).group_by(Version.target_id)).all())
        changes = dict(conn.execute(select(Change.target_id, func.count()).where(Change.kind != "first")
                                    .group_by(Change.target_id)).all())
    return {tid: (versions.get(tid, 0), changes.get(tid, 0)) for tid in set(versions) | set(changes)}


def failed_alerts(store: Store) -> int:
    with store.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(Alert).where(Alert.state == "failed")).scalar()


@dataclass
class ChangeList:
    changes: list  # change rows, each with `target_name`
    seq_of: dict[int, int]
    more: bool  # older changes exist past this page


def changes(store: Store, target_id: int | None = None, kinds: tuple[str, ...] | None = None,
            before: int | None = None, limit: int | None = 50) -> ChangeList:
    """Changes newest first (all targets, or one), optionally of some kinds, older than id `before`;
    at most `limit` of them (None: all)."""
    query = (select(*CHANGE, Target.name.label("target_name"), Target.site_id.label("target_site_id"))
             .join(Target, Target.id == Change.target_id)
             .order_by(Change.id.desc()))
    if limit is not None:
        query = query.limit(limit + 1)
    if target_id is not None:
        query = query.where(Change.target_id == target_id)
    if kinds:
        query = query.where(Change.kind.in_(kinds))
    if before is not None:
        query = query.where(Change.id < before)
    with store.engine.connect() as conn:
        rows = list(conn.execute(query))
        more = limit is not None and len(rows) > limit
        rows = rows[:limit]
        seq_of = seqs(conn, [i for c in rows for i in (c.from_version_id, c.to_version_id, c.restored_version_id)])
    return ChangeList(rows, seq_of, more)


def gone_events(store: Store, target_id: int | None = None, limit: int = 50) -> list:
    """'Page gone' events, newest first, with `target_name` and `target_url` (for the feeds)."""
    query = (select(Event.id, Event.kind, Event.created_at, Event.summary, Target.name.label("target_name"),
                    Target.url.label("target_url"))
             .join(Target, Target.id == Event.target_id).where(Event.kind == "gone")
             .order_by(Event.id.desc()).limit(limit))
    if target_id is not None:
        query = query.where(Event.target_id == target_id)
    with store.engine.connect() as conn:
        return list(conn.execute(query))


@dataclass
class Detail:
    change: object
    target: object
    versions: dict[int, object]  # id -> version row, for from/to/restored
    previous_id: int | None
    next_id: int | None

    def version(self, version_id: int | None):
        return self.versions.get(version_id)

    @property
    def seq_of(self) -> dict[int, int]:
        return {i: v.seq for i, v in self.versions.items()}


def change(store: Store, change_id: int) -> Detail:
    with store.engine.connect() as conn:
        row = conn.execute(select(*CHANGE).where(Change.id == change_id)).first() if 0 < change_id <= MAX_INT else None
        if row is None:
            raise NotFound(f"no change #{change_id}")
        target_row = conn.execute(select(*TARGET).where(Target.id == row.target_id)).first()
        ids = [i for i in (row.from_version_id, row.to_version_id, row.restored_version_id) if i]
        rows = {v.id: v for v in conn.execute(select(*VERSION).where(Version.id.in_(ids)))}
        same = Change.target_id == row.target_id
        previous_id = conn.execute(select(func.max(Change.id)).where(same, Change.id < row.id)).scalar()
        next_id = conn.execute(select(func.min(Change.id)).where(same, Change.id > row.id)).scalar()
    return Detail(row, target_row, rows, previous_id, next_id)


@dataclass
class Entry:
    """One line of a target's timeline: a version and the change that made it, or an event
    that made no version (a failed check, a page gone, a recovery)."""

    at: datetime
    version: object | None = None
    change: object | None = None
    event: object | None = None


@dataclass
class Timeline:
    entries: list[Entry]
    seq_of: dict[int, int]
    total: int  # versions in all
    page: int
    pages: int


# Only what a timeline line shows: no headers, no passages.
TIMELINE_VERSION = (Version.id, Version.seq, Version.first_seen, Version.last_seen, Version.times_seen, Version.words,
                    Version.source)
TIMELINE_CHANGE = (Change.id, Change.to_version_id, Change.from_version_id, Change.restored_version_id, Change.kind,
                   Change.summary, Change.stats)


def timeline(store: Store, target_id: int, page: int = 1, per_page: int = 100) -> Timeline:
    """One page of a target's versions (newest first), each with the change that made it, and the
    events that fell between them."""
    with store.engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(Version).where(Version.target_id == target_id)).scalar()
        pages = max(1, -(-total // per_page))
        page = min(max(1, page), pages)
        offset = (page - 1) * per_page
        rows = list(conn.execute(select(*TIMELINE_VERSION).where(Version.target_id == target_id)
                                 .order_by(Version.seq.desc()).limit(per_page).offset(offset)))
        made = {c.to_version_id: c for c in conn.execute(
            select(*TIMELINE_CHANGE).where(Change.to_version_id.in_([v.id for v in rows])))} if rows else {}
        events = select(Event.id, Event.kind, Event.created_at, Event.summary).where(
            Event.target_id == target_id, Event.kind.in_(PROBLEMS))
        if page < pages and rows:
            events = events.where(Event.created_at >= rows[-1].first_seen)
        if page > 1:
            newer = conn.execute(select(Version.first_seen).where(Version.target_id == target_id)
                                 .order_by(Version.seq.desc()).offset(offset - 1).limit(1)).scalar()
            events = events.where(Event.created_at < newer)
        event_rows = list(conn.execute(events.order_by(Event.id.desc())))
        seq_of = {v.id: v.seq for v in rows}
        seq_of.update(seqs(conn, [i for c in made.values() for i in (c.from_version_id, c.restored_version_id)]))
    entries = [Entry(v.first_seen, version=v, change=made.get(v.id)) for v in rows]
    entries += [Entry(e.created_at, event=e) for e in event_rows]
    entries.sort(key=lambda e: (e.at, e.version is not None), reverse=True)
    return Timeline(entries, seq_of, total, page, pages)


def events(store: Store, target_id: int) -> list:
    """A target's events, newest first."""
    with store.engine.connect() as conn:
        return list(conn.execute(select(*Event.__table__.columns).where(Event.target_id == target_id)
                                 .order_by(Event.id.desc())))


def alerts(store: Store, failed_only: bool = False, limit: int = 200) -> list:
    """The outbox, newest first: each alert's columns with its event's `kind`, `summary` and
    `change_id` and its target's name as `target`."""
    query = (select(*Alert.__table__.columns, Event.kind, Event.summary, Event.change_id,
                    Target.name.label("target"))
             .join(Event, Alert.event_id == Event.id).join(Target, Event.target_id == Target.id)
             .order_by(Alert.id.desc()).limit(limit))
    if failed_only:
        query = query.where(Alert.state == "failed")
    with store.engine.connect() as conn:
        return list(conn.execute(query))


def recent_checks(store: Store, target_id: int, limit: int = 20) -> tuple[list, dict[int, int]]:
    """The newest check rows of a target, and the version numbers they name."""
    with store.engine.connect() as conn:
        rows = list(conn.execute(select(*Check.__table__.columns).where(Check.target_id == target_id)
                                 .order_by(Check.id.desc()).limit(limit)))
        return rows, seqs(conn, [c.version_id for c in rows])
