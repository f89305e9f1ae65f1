"""Persistence: the database (SQLModel rows) plus the snapshot store (content-addressed files).

Snapshot files are written before the rows that name them are committed, and every write that
belongs together (version, change, event, check, target state) is one transaction, so a crash at
any point leaves the history as it was or whole, never half-written.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Iterable

from sqlalchemy import bindparam, case, event, func, or_, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import ArgumentError, IntegrityError, SQLAlchemyError
from sqlmodel import Session, create_engine, select

from . import chain, lease, migrate
from .models import Alert, Change, Check, Event, Site, Target, Version, utcnow
from .results import Earlier, Verdict
from .snapshots import Snapshots
from .storage import database_name, storage_error


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


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def make_engine(url: str) -> Engine:
    """An engine for the database URL, or a StoreError naming the database and the problem (a URL
    no dialect or driver here can open, a SQLite file in a folder that does not exist)."""
    name = database_name(url)
    try:
        if url.startswith("sqlite"):
            path = url.split(":///", 1)[-1]
            if path and path != ":memory:" and not Path(path).parent.is_dir():
                raise StoreError(f"database {name}: the folder {Path(path).parent} does not exist "
                                 "(create it, or correct [monitor] database)")
            engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 10})
            event.listen(engine, "connect", _sqlite_pragmas)
            return engine
        return create_engine(url, pool_pre_ping=True)
    except ArgumentError as exc:
        raise StoreError(f"database {name}: not a database URL monitor can open ({exc}); use "
                         "sqlite:///PATH or postgresql+psycopg://USER@HOST/NAME") from None
    except ImportError as exc:
        raise StoreError(f"database {name}: its driver is not installed ({exc})") from None


_STATE_COLUMNS = (Target.id, Target.name, Target.status, Target.etag, Target.last_modified, Target.last_raw_sha,
                  Target.last_version_id, Target.last_check_id, Target.last_outcome, Target.consecutive_errors,
                  Target.consecutive_missing, Target.next_due_at, Target.rules, Target.path_strikes, Target.url,
                  Target.site_id, Target.published_at, Target.created_at, Target.last_change_at,
                  Target.unchanged_streak, Target.baseline)


BATCH_SIZE = 500

_EXTEND_CHECK = (update(Check).where(Check.id == bindparam("b_cid"))
                 .values(until=bindparam("b_at"), count=Check.count + 1, duration_ms=bindparam("b_ms"),
                         http_status=bindparam("b_status")))
_SEEN_VERSION = (update(Version).where(Version.id == bindparam("b_vid"))
                 .values(last_seen=bindparam("b_at"), times_seen=Version.times_seen + 1))
_NEW_CHECK = Check.__table__.insert().returning(Check.__table__.c.id, sort_by_parameter_order=True)
_TARGET_OK = (update(Target).where(Target.id == bindparam("b_tid"))
              .values(last_check_at=bindparam("b_at"), last_ok_at=bindparam("b_at"), status="ok", last_error=None,
                      consecutive_errors=0, consecutive_missing=0, last_check_id=bindparam("b_cid"),
                      last_outcome="unchanged", etag=bindparam("b_etag"), last_modified=bindparam("b_lm"),
                      last_raw_sha=bindparam("b_raw"), next_due_at=bindparam("b_due"),
                      unchanged_streak=bindparam("b_streak"), interval_s=bindparam("b_iv")))


_SET_DUE = update(Target).where(Target.id == bindparam("b_tid")).values(next_due_at=bindparam("b_due"))
_SET_DUE_UNCHECKED = (update(Target).where(Target.id == bindparam("b_tid"),
                                            Target.last_check_id.is_not_distinct_from(bindparam("b_seen")))
                      .values(next_due_at=bindparam("b_due")))


def no_alerts(target: str, kind: str, stats: dict, passages: list, site: str | None = None) -> list[tuple[str, bool]]:
    return []


class Store:
    """`router(target_name, kind, stats, passages) -> [(channel, priority)]` decides which alert
    channels an event goes to; the alert rows are written in the event's own transaction.

    Open one with Store.open(), which brings the database's schema up to date first; the
    constructor alone touches no table."""

    def __init__(self, database_url: str, snapshots: Snapshots, router=no_alerts, lease_s: float = lease.MIN_LEASE):
        self.url = database_url
        self.router = router
        self.lease_s = lease_s  # how long a claim holds unless renewed (monitor/lease.py)
        self._claimed = False
        self._pending: list[dict] = []  # unchanged checks extending their target's check row
        self._pending_new: list[tuple[TargetState, dict, dict]] = []  # ... starting a new one
        self._batching = False
        self._site_names: dict[int, str] = {}
        self._gone = lease.Gone()
        self.engine = make_engine(database_url)
        self.snapshots = snapshots

    @classmethod
    def open(cls, database_url: str, snapshots: Snapshots, **options) -> "Store":
        """A store whose database has the current schema: migrated first when it is older (or
        new); one query when it is current. Raises StoreError naming the database."""
        store = cls(database_url, snapshots, **options)
        try:
            migrate.upgrade(store.engine)
        except (SQLAlchemyError, OSError) as exc:  # not a database, unreadable, unreachable, disk full
            store.engine.dispose()
            raise StoreError(f"cannot open {storage_error(database_url, exc)}") from exc
        return store

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.flush()
        if self._claimed:
            self.release_all()
        self.engine.dispose()

    def checkpoint(self) -> None:
        """After a writing run: fold SQLite's write-ahead log back into the database file so it
        does not linger at its high-water size. Gives up quickly if another process is busy."""
        if self.engine.dialect.name != "sqlite":
            return
        with self.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA busy_timeout=500")
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.exec_driver_sql("PRAGMA busy_timeout=10000")

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    # ---- targets -----------------------------------------------------------------------------

    def sync_targets(self, targets: Iterable[Watched], sites: Iterable[str]) -> dict[str, TargetState]:
        """Make the targets table match the configured targets and sites: add new, update URLs
        and intervals, mark targets no longer configured inactive (their history is kept). A
        site's discovered posts stay as they are while the site is configured, and go inactive
        with it. Returns the configured targets' states by name; NameTaken when a configured
        name is a discovered post's. Processes starting together on one database may both add
        the same new target: the one whose insert loses reads the winner's rows and goes on."""
        targets, sites = list(targets), set(sites)
        try:
            return self._sync_targets(targets, sites)
        except IntegrityError:
            return self._sync_targets(targets, sites)

    def _sync_targets(self, targets: list[Watched], sites: set[str]) -> dict[str, TargetState]:
        wanted = {t.name: t for t in targets}
        with self.engine.begin() as conn:
            site_rows = {r.name: r for r in conn.execute(select(Site.id, Site.name, Site.active))}
            new_sites = [dict(name=n, active=True, created_at=utcnow(), status="new", discoveries=0, sources={})
                         for n in sites if n not in site_rows]
            if new_sites:
                conn.execute(Site.__table__.insert(), new_sites)
            for name, row in site_rows.items():
                if row.active != (name in sites):
                    conn.execute(update(Site).where(Site.id == row.id).values(active=name in sites))
                    conn.execute(update(Target).where(Target.site_id == row.id, Target.alias_of.is_(None))
                                 .values(active=name in sites))
            rows = {r.name: r for r in conn.execute(select(Target.id, Target.name, Target.url, Target.active,
                                                           Target.interval_s).where(Target.site_id.is_(None)))}
            taken = set(conn.execute(select(Target.name).where(Target.site_id.is_not(None))).scalars())
            clash = sorted(set(wanted) & taken)
            if clash:
                raise NameTaken(f"target name {clash[0]!r} is already used by a discovered post of a site; "
                                "rename the target")
            new = [dict(name=n, url=t.url, interval_s=t.interval_s, created_at=utcnow(), active=True,
                        status="new", consecutive_errors=0, consecutive_missing=0)
                   for n, t in wanted.items() if n not in rows]
            if new:
                conn.execute(Target.__table__.insert(), new)
            for name, row in rows.items():
                target = wanted.get(name)
                if target is None:
                    if row.active:
                        conn.execute(update(Target).where(Target.id == row.id).values(active=False))
                    continue
                values = {}
                if row.url != target.url:
                    # A new URL is a new page as far as caching goes.
                    values.update(url=target.url, etag=None, last_modified=None, last_raw_sha=None)
                if row.interval_s != target.interval_s:
                    values["interval_s"] = target.interval_s
                if not row.active:
                    values["active"] = True
                if values:
                    conn.execute(update(Target).where(Target.id == row.id).values(**values))
            states = {r.name: TargetState(*r) for r in conn.execute(
                select(*_STATE_COLUMNS).where(Target.active, Target.site_id.is_(None)))}
        return states

    def post_states(self, site_ids: Iterable[int] | None = None, due_before: datetime | None = None
                    ) -> list[TargetState]:
        """The active discovered posts (of the given sites; due before a time), soonest first."""
        query = select(*_STATE_COLUMNS).where(Target.active, Target.site_id.is_not(None))
        if site_ids is not None:
            query = query.where(Target.site_id.in_(list(site_ids)))
        if due_before is not None:
            query = query.where((Target.next_due_at <= due_before) | Target.next_due_at.is_(None))
        query = query.order_by(Target.next_due_at.nulls_first(), Target.id)
        with self.engine.connect() as conn:
            return [TargetState(*r) for r in conn.execute(query)]

    def claim_due(self, now: datetime, pick, limit: int, sites: dict[int, int], skip: Iterable[int] = ()
                  ) -> dict[int, TargetState]:
        """The daemon's look for work, in one transaction: read the due targets this process may
        claim, soonest first (up to `limit` configured targets, and up to `sites[id]` posts of
        each of those sites), let `pick(rows)` choose among them (rows of id, url, next_due_at,
        site_id; it returns ids), claim the chosen and return their states read after the claim.

        On PostgreSQL the rows read are locked until the claim commits, and rows another worker
        has locked are passed over, not waited for (FOR UPDATE SKIP LOCKED): workers looking at
        once each take different targets. SQLite has one writer at a time; the claim's condition
        (the row still free) keeps two processes from taking one target there."""
        skip = list(skip)
        with self.engine.begin() as conn:
            free = self._free(conn, Target.__table__, now)
            rows = self._due(conn, Target.site_id.is_(None), now, limit, skip, free) if limit > 0 else []
            for site_id, most in sites.items():
                rows += self._due(conn, Target.site_id == site_id, now, most, skip, free)
            ids = list(pick(rows)) if rows else []
            if not ids:
                return {}
            self._claim(conn, Target.__table__, ids, now)
            return {r.id: TargetState(*r) for i in range(0, len(ids), BATCH_SIZE) for r in conn.execute(
                select(*_STATE_COLUMNS).where(Target.id.in_(ids[i:i + BATCH_SIZE]), Target.claimed_by == self.worker))}

    @staticmethod
    def _due(conn, where, now: datetime, limit: int, skip: list[int], free) -> list:
        """Up to `limit` due rows of the active targets `where` says (one site's, or no site's),
        those never given a due time first, then the soonest. Two queries, each ordered as the
        index on (site, due time) is, so the database reads the rows in its order and stops at
        the limit. One query for `next_due_at <= now OR next_due_at IS NULL`, or one ordered by
        due time alone (PostgreSQL does not take `site_id IS NULL` as fixing the index's first
        column), reads and sorts every due row instead: 60 ms at 100,000 due targets, against
        0.5 ms (docs/benchmarks.md)."""
        rows: list = []
        for when in (Target.next_due_at.is_(None), Target.next_due_at <= now):
            if len(rows) >= limit:
                break
            query = select(Target.id, Target.url, Target.next_due_at, Target.site_id).where(
                Target.active, where, when, free)
            if skip:
                query = query.where(Target.id.not_in(skip))
            rows += conn.execute(query.order_by(Target.site_id, Target.next_due_at, Target.id)
                                 .limit(limit - len(rows)).with_for_update(skip_locked=True)).all()
        return rows

    def set_due(self, due: dict[int, datetime], seen: dict[int, int | None] | None = None) -> None:
        """Move targets' next checks (by id), e.g. to spread the overdue ones when the daemon starts.
        With `seen` (id -> the last check's id as the caller read it), a target another process
        has checked since keeps the due time that check set."""
        if due and seen is not None:
            with self.engine.begin() as conn:
                conn.execute(_SET_DUE_UNCHECKED, [dict(b_tid=i, b_due=at, b_seen=seen[i]) for i, at in due.items()])
        elif due:
            with self.engine.begin() as conn:
                conn.execute(_SET_DUE, [dict(b_tid=i, b_due=at) for i, at in due.items()])

    def site_name(self, conn, site_id: int | None) -> str | None:
        if site_id is None:
            return None
        if site_id not in self._site_names:
            self._site_names[site_id] = conn.execute(select(Site.name).where(Site.id == site_id)).scalar()
        return self._site_names[site_id]

    def site_rows(self, active_only: bool = True) -> list[Site]:
        with self.session() as session:
            query = select(Site).order_by(Site.name)
            if active_only:
                query = query.where(Site.active)
            return list(session.exec(query))

    def site_row(self, name: str) -> Site | None:
        with self.session() as session:
            return session.exec(select(Site).where(Site.name == name)).first()

    def post_counts(self) -> dict[int, dict[str, int]]:
        """site id -> {"posts": active posts, "gone": posts gone, "aliases": duplicates folded}."""
        counts: dict[int, dict[str, int]] = {}
        with self.engine.connect() as conn:
            for site_id, active, status, alias, n in conn.execute(
                    select(Target.site_id, Target.active, Target.status, Target.alias_of.is_not(None), func.count())
                    .where(Target.site_id.is_not(None))
                    .group_by(Target.site_id, Target.active, Target.status, Target.alias_of.is_not(None))):
                c = counts.setdefault(site_id, {"posts": 0, "gone": 0, "aliases": 0, "new": 0})
                if alias:
                    c["aliases"] += n
                elif active:
                    c["posts"] += n
                    c["gone"] += n if status == "gone" else 0
                    c["new"] += n if status == "new" else 0
        return counts

    def target_names(self) -> set[str]:
        with self.engine.connect() as conn:
            return set(conn.execute(select(Target.name)).scalars())

    def site_names(self) -> dict[int, str]:
        with self.engine.connect() as conn:
            return dict(conn.execute(select(Site.id, Site.name)).all())

    def known_urls(self) -> dict[str, tuple[int, bool]]:
        """Every URL a target has (or last redirected to) -> (the target's id, whether a discovery
        should leave it alone). Left alone: active targets and folded duplicates, so one post is
        never watched twice. Not left alone: targets no longer watched (their site or [[targets]]
        entry was removed); a site that lists them again takes them over, history and all."""
        with self.engine.connect() as conn:
            rows = list(conn.execute(select(Target.id, Target.url, Target.active, Target.alias_of,
                                            Target.last_version_id)))
            finals = dict(conn.execute(select(Version.id, Version.final_url).where(
                Version.id.in_(select(Target.last_version_id).where(Target.last_version_id.is_not(None))))).all())
        known: dict[str, tuple[int, bool]] = {}
        for tid, url, active, alias_of, last_version_id in rows:
            keep = bool(active or alias_of is not None)
            for u in (url, finals.get(last_version_id)):
                if u and (u not in known or (keep and not known[u][1])):
                    known[u] = (tid, keep)
        return known

    def record_discovery(self, site_id: int, *, found: list[tuple[str, datetime | None]], names: dict[str, str],
                         sources: dict, error: str | None, at: datetime, next_at: datetime,
                         new_due: datetime | None = None, recheck: list[str] = (),
                         adopt: list[int] = ()) -> list[int]:
        """One discovery of a site: new posts (URLs in `names`) become targets, due at `new_due`;
        posts listed again are marked so; posts no longer listed stay watched. When there are new
        posts, the posts at the `recheck` URLs (those that just left a feed) are made due now: a
        post that moved to a new URL is then found (by its redirect) before the new URL is taken
        for a new post. Returns the new targets' ids.

        New posts are written a batch per transaction, so that a big sitemap never holds the
        database's write lock for long (the daemon's checks write meanwhile); a discovery cut
        short leaves whole posts, which the next one finds known."""
        new = [(url, published) for url, published in found if url in names]
        with self.engine.begin() as conn:
            baseline = conn.execute(select(Site.discoveries).where(Site.id == site_id)).scalar_one() == 0
            # By id, from one read of the site's posts: no index on url, and a lookup per batch of
            # URLs would scan every post of the site each time (quadratic on a big sitemap).
            posts = dict(conn.execute(select(Target.url, Target.id).where(Target.site_id == site_id)).all())
            listed = [posts[url] for url, _ in found if url in posts]
            for i in range(0, len(listed), BATCH_SIZE):
                conn.execute(update(Target).where(Target.id.in_(listed[i:i + BATCH_SIZE])).values(listed_at=at))
            adopt = list(adopt)
            for i in range(0, len(adopt), BATCH_SIZE):  # targets no longer watched, listed by this site
                conn.execute(update(Target).where(Target.id.in_(adopt[i:i + BATCH_SIZE])).values(
                    site_id=site_id, active=True, listed_at=at, next_due_at=new_due))
            recheck = list(recheck) if new else []
            for i in range(0, len(recheck), BATCH_SIZE):
                conn.execute(update(Target).where(
                    Target.site_id == site_id, Target.active, Target.url.in_(recheck[i:i + BATCH_SIZE]),
                    Target.next_due_at > at).values(next_due_at=at))
        ids: list[int] = []
        for i in range(0, len(new), BATCH_SIZE):
            batch = [dict(name=names[url], url=url, site_id=site_id, published_at=published, listed_at=at,
                          baseline=baseline, created_at=at, active=True, status="new", interval_s=0.0,
                          consecutive_errors=0, consecutive_missing=0, unchanged_streak=0, next_due_at=new_due)
                     for url, published in new[i:i + BATCH_SIZE]]
            with self.engine.begin() as conn:
                conn.execute(Target.__table__.insert(), batch)
                ids += conn.execute(select(Target.id).where(Target.name.in_([r["name"] for r in batch]))).scalars()
        with self.engine.begin() as conn:
            conn.execute(update(Site).where(Site.id == site_id).values(
                last_discovery_at=at, next_discovery_at=next_at, status="error" if error else "ok",
                last_error=error, discoveries=Site.discoveries + (0 if error and not found else 1), sources=sources))
        return ids

    def move_url(self, state: TargetState, url: str) -> TargetState | None:
        """A post turned out to live at `url` (it redirected, or named it as canonical). Fold
        duplicates: when another target already has that URL, the one with the longer history
        stays (on ties the older), the other becomes an inactive alias of it. Returns the state of
        the target that stays when it is not this one (this check then stops)."""
        with self.engine.begin() as conn:
            other = conn.execute(select(Target.id, Target.last_version_id, Target.site_id).where(
                Target.url == url, Target.id != state.id, Target.active, Target.alias_of.is_(None))).first()
            if other is None:
                conn.execute(update(Target).where(Target.id == state.id).values(url=url))
                state.url = url
                return None
            mine = conn.execute(select(func.count()).where(Version.target_id == state.id)).scalar()
            theirs = conn.execute(select(func.count()).where(Version.target_id == other.id)).scalar()
            keep_mine = mine > theirs or (mine == theirs and state.id < other.id)
            keep, drop = (state.id, other.id) if keep_mine else (other.id, state.id)
            conn.execute(update(Target).where(Target.id == drop).values(active=False, alias_of=keep))
            if keep_mine:
                conn.execute(update(Target).where(Target.id == state.id).values(url=url))
                state.url = url
                return None
            row = conn.execute(select(*_STATE_COLUMNS).where(Target.id == keep)).first()
        return TargetState(*row)

    def defer(self, state: TargetState, until: datetime) -> None:
        """The host asked us to wait: move the next check, record nothing else."""
        with self.engine.begin() as conn:
            conn.execute(update(Target).where(Target.id == state.id).values(next_due_at=until))
        state.next_due_at = until

    def state(self, name: str) -> TargetState | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(*_STATE_COLUMNS).where(Target.name == name)).first()
        return TargetState(*row) if row else None

    def set_rules(self, state: TargetState, rules: list[dict], strikes: dict[str, int]) -> None:
        """Replace a target's learned volatile rules and per-path change counts."""
        with self.engine.begin() as conn:
            conn.execute(update(Target).where(Target.id == state.id).values(rules=rules, path_strikes=strikes))
        state.rules, state.path_strikes = rules, strikes

    # ---- claims: one process at a time checks a target, discovers a site or sends an alert -----
    # A claim is a lease on the row (claimed_by, claimed_until), taken with one UPDATE where the
    # row is free, its lease has expired, or its holder is known to have ended (monitor/lease.py),
    # then read back. Where the rows to claim are first looked for (due targets, sites, alerts),
    # the look locks them FOR UPDATE SKIP LOCKED in the claim's transaction on PostgreSQL, so
    # several workers never wait on each other's rows; SQLite renders no lock and, having one
    # writer, needs none. The same statements serve both, and they all live here.

    @property
    def worker(self) -> str:
        return lease.worker_id()

    def _free(self, conn, table, now: datetime):
        """The condition on `table`'s rows that this process may claim: free, expired, its own, or
        held by a process known to have ended (looked for now and then: lease.Gone)."""
        gone = self._gone.holders(table.name, lambda: conn.execute(select(table.c.claimed_by).distinct().where(
            table.c.claimed_by.is_not(None), table.c.claimed_by != self.worker, table.c.claimed_until >= now)).scalars())
        return or_(table.c.claimed_by.is_(None), table.c.claimed_until < now,
                   table.c.claimed_by.in_([self.worker, *gone]))

    def _claim(self, conn, table, ids: list[int], now: datetime) -> None:
        until = now + timedelta(seconds=self.lease_s)
        for i in range(0, len(ids), BATCH_SIZE):
            chunk = ids[i:i + BATCH_SIZE]
            conn.execute(update(table).where(table.c.id.in_(chunk), self._free(conn, table, now))
                         .values(claimed_by=self.worker, claimed_until=until))
        self._claimed = True

    def _mine(self, table):
        """Rows no other process holds: what this process may write a check's outcome to."""
        return or_(table.c.claimed_by.is_(None), table.c.claimed_by == self.worker)

    def claim_targets(self, ids: Iterable[int]) -> dict[int, TargetState]:
        """Claim the targets (by id) that no other process is checking. Returns the claimed ones'
        states by id, read after the claim: a check never starts from a state another process
        has since moved on from."""
        ids, states = list(ids), {}
        with self.engine.begin() as conn:
            self._claim(conn, Target.__table__, ids, utcnow())
            for i in range(0, len(ids), BATCH_SIZE):
                states.update((r.id, TargetState(*r)) for r in conn.execute(select(*_STATE_COLUMNS).where(
                    Target.id.in_(ids[i:i + BATCH_SIZE]), Target.claimed_by == self.worker)))
        return states

    def release_targets(self, ids: Iterable[int]) -> None:
        """Let other processes check these targets again (after what was recorded is written)."""
        self.flush()
        ids = list(ids)
        with self.engine.begin() as conn:
            for i in range(0, len(ids), BATCH_SIZE):
                conn.execute(update(Target).where(Target.id.in_(ids[i:i + BATCH_SIZE]), Target.claimed_by == self.worker)
                             .values(claimed_by=None, claimed_until=None))

    def claim_sites(self, now: datetime, names: Iterable[str], skip: Iterable[int] = (), due_only: bool = True
                    ) -> list[Site]:
        """Claim the active sites (of those named) whose discovery is due (never run, or its time
        has come), or all of them, that no other process is discovering; returns their rows.
        release_site releases each. On PostgreSQL a site another worker is claiming at this
        moment is passed over (FOR UPDATE SKIP LOCKED), as targets are."""
        table, names, skip = Site.__table__, list(names), list(skip)
        if not names:
            return []
        with self.engine.begin() as conn:
            query = select(Site.id).where(Site.active, Site.name.in_(names), self._free(conn, table, now))
            if due_only:
                query = query.where(or_(Site.next_discovery_at.is_(None), Site.next_discovery_at <= now))
            if skip:
                query = query.where(Site.id.not_in(skip))
            ids = list(conn.execute(query.order_by(Site.id).with_for_update(skip_locked=True)).scalars())
            if not ids:
                return []
            self._claim(conn, table, ids, now)
        with self.session() as session:
            return list(session.exec(select(Site).where(Site.id.in_(ids), Site.claimed_by == self.worker)))

    def release_site(self, site_id: int, retry_at: datetime | None = None) -> None:
        """A discovery is over (its outcome recorded); `retry_at`: it failed before recording
        anything, and the site is due again then."""
        values = dict(claimed_by=None, claimed_until=None)
        if retry_at is not None:
            values["next_discovery_at"] = retry_at
        with self.engine.begin() as conn:
            conn.execute(update(Site).where(Site.id == site_id, Site.claimed_by == self.worker).values(**values))

    def discover_now(self, names: Iterable[str], now: datetime) -> None:
        """Make these sites' discoveries due now (their sources or filters changed)."""
        names = list(names)
        if names:
            with self.engine.begin() as conn:
                conn.execute(update(Site).where(Site.name.in_(names)).values(next_discovery_at=now))

    def renew_claims(self) -> None:
        """Extend every claim this process holds by a whole lease."""
        if not self._claimed:
            return
        until = utcnow() + timedelta(seconds=self.lease_s)
        with self.engine.begin() as conn:
            for table in (Target.__table__, Alert.__table__, Site.__table__):
                conn.execute(update(table).where(table.c.claimed_by == self.worker).values(claimed_until=until))

    def holding_claims(self):
        """An async context: while it runs, this process's claims are renewed at a third of the
        lease (a pass or a daemon may hold them far longer than one lease)."""
        return lease.renewing(self.renew_claims, self.lease_s / 3)

    def release_all(self) -> None:
        """Release every claim this process still holds (when it closes the store)."""
        with self.engine.begin() as conn:
            for table in (Target.__table__, Alert.__table__, Site.__table__):
                conn.execute(update(table).where(table.c.claimed_by == self.worker)
                             .values(claimed_by=None, claimed_until=None))

    # ---- recording checks --------------------------------------------------------------------

    @contextmanager
    def batch(self):
        """Within this block, unchanged checks are written in batches (executemany) rather than
        one transaction each. Losing an unflushed batch in a crash loses only 'last checked'
        times, never history; changes and errors are always written at once."""
        self._batching = True
        try:
            yield self
        finally:
            self._batching = False
            self.flush()

    def flush(self) -> None:
        rows, self._pending = self._pending, []
        new, self._pending_new = self._pending_new, []
        if not rows and not new:
            return
        with self.engine.begin() as conn:
            if rows:
                conn.execute(_EXTEND_CHECK, rows)
            if new:  # one INSERT for all the new check rows, their ids back in order
                ids = conn.execute(_NEW_CHECK, [check for _, _, check in new]).scalars().all()
                for (_, row, _), check_id in zip(new, ids):
                    row["b_cid"] = check_id
                rows = rows + [row for _, row, _ in new]
            seen = [r for r in rows if r["b_vid"] is not None]
            if seen:
                conn.execute(_SEEN_VERSION, seen)
            conn.execute(_TARGET_OK, rows)
        for state, row, _ in new:
            state.last_check_id, state.last_outcome = row["b_cid"], "unchanged"

    def record_unchanged(self, state: TargetState, *, attempt: Attempt, due: Due, etag: str | None = None,
                         last_modified: str | None = None, raw_sha: str | None = None,
                         recovered_event: str | None = None) -> None:
        """An unchanged check: extend the running 'unchanged' check row, or start one. `etag` and
        `last_modified` are the answer's validators, `raw_sha` the body's hash when it differs
        from the last one's; `recovered_event` the 'recovered' event's words after failures."""
        at, duration_ms, http_status = attempt.at, attempt.duration_ms, attempt.http_status
        if etag is not None or last_modified is not None:
            state.etag, state.last_modified = etag, last_modified
        if raw_sha is not None:
            state.last_raw_sha = raw_sha
        row = dict(b_tid=state.id, b_vid=state.last_version_id, b_cid=state.last_check_id, b_at=at,
                   b_ms=duration_ms, b_status=http_status, b_etag=state.etag, b_lm=state.last_modified,
                   b_raw=state.last_raw_sha)
        row.update(b_due=due.at, b_streak=due.streak, b_iv=due.interval)
        state.unchanged_streak, state.next_due_at = due.streak, due.at
        state.status, state.consecutive_errors, state.consecutive_missing = "ok", 0, 0
        if state.last_outcome == "unchanged" and state.last_check_id is not None and not recovered_event:
            self._pending.append(row)
        elif not recovered_event:  # the first unchanged check after a change or an error
            self._pending_new.append((state, row, dict(
                target_id=state.id, at=at, until=at, count=1, duration_ms=duration_ms, http_status=http_status,
                outcome="unchanged", version_id=state.last_version_id)))
        if not recovered_event:
            if not self._batching or len(self._pending) + len(self._pending_new) >= BATCH_SIZE:
                self.flush()
            return
        with self.engine.begin() as conn:
            row["b_cid"] = conn.execute(Check.__table__.insert().values(
                target_id=state.id, at=at, until=at, count=1, duration_ms=duration_ms, http_status=http_status,
                outcome="unchanged", version_id=state.last_version_id)).inserted_primary_key[0]
            if state.last_version_id is not None:
                conn.execute(_SEEN_VERSION, row)
            conn.execute(_TARGET_OK, row)
            if recovered_event:
                self._event(conn, state, "recovered", recovered_event, at)
        state.last_check_id, state.last_outcome = row["b_cid"], "unchanged"

    def record_failure(self, state: TargetState, *, attempt: Attempt, failure: Failure, due: Due) -> list[str]:
        """A failed check: never a version. Returns the events it raised ('error' on the first
        failure after good checks, 'gone' when a page answered 404/410 gone_after times in a row)."""
        at, duration_ms, http_status = attempt.at, attempt.duration_ms, attempt.http_status
        error, missing, gone_after, gone_summary = failure.error, failure.missing, failure.gone_after, failure.gone_summary
        errors = state.consecutive_errors + 1
        misses = state.consecutive_missing + 1 if missing else 0
        events = []
        status = "error"
        if missing and misses >= gone_after:
            status = "gone"
            if misses == gone_after:
                events.append(("gone", gone_summary or f"page gone: HTTP {http_status} on {misses} checks in a row; "
                                                       "last good text kept"))
        elif state.status not in ("error", "gone"):
            events.append(("error", f"check failed: {error}"))
        with self.engine.begin() as conn:
            check_id = conn.execute(Check.__table__.insert().values(
                target_id=state.id, at=at, until=at, count=1, duration_ms=duration_ms, http_status=http_status,
                outcome="missing" if missing else "error", error=error)).inserted_primary_key[0]
            self._write_state(conn, state, last_check_at=at, status=status, last_error=error,
                              consecutive_errors=errors, consecutive_missing=misses, last_check_id=check_id,
                              last_outcome="error", next_due_at=due.at, interval_s=due.interval)
            for kind, summary in events:
                self._event(conn, state, kind, summary, at)
        state.status, state.consecutive_errors, state.consecutive_missing = status, errors, misses
        state.last_check_id, state.last_outcome = check_id, "error"
        return [kind for kind, _ in events]

    def record_version(self, state: TargetState, *, capture: Capture, verdict: Verdict, attempt: Attempt, due: Due,
                       previous_raw_sha: str | None = None) -> int:
        """A new version and the change that led to it (detect's verdict): snapshot files first,
        then one transaction for version, change, event, check and target. Returns the
        version's number."""
        self.snapshots.put(capture.raw, capture.raw_sha, base=self.snapshots.keyframe(previous_raw_sha))
        self.snapshots.put(capture.text.encode("utf-8"), capture.text_sha, base=capture.raw_sha)
        screenshot_sha, response_sha = (self.snapshots.put(b) if b else None for b in (capture.screenshot,
                                                                                       capture.response))
        at, duration_ms, outcome = attempt.at, attempt.duration_ms, verdict.outcome
        edited = verdict.edits_page
        restored_id = verdict.restored.version_id if verdict.restored else None
        with self.engine.begin() as conn:
            if edited:
                conn.execute(update(Target).where(Target.id == state.id).values(last_change_at=at))
            seq = (conn.execute(select(func.max(Version.seq)).where(Version.target_id == state.id)).scalar() or 0) + 1
            link = chain.next_link(conn, state.id)
            version_id = conn.execute(Version.__table__.insert().values(
                target_id=state.id, seq=seq, text_sha=capture.text_sha, raw_sha=capture.raw_sha, first_seen=at,
                last_seen=at, times_seen=1, http_status=capture.http_status, final_url=capture.final_url,
                headers=capture.headers, title=capture.title, words=capture.words, blocks=capture.blocks,
                extract_key=capture.extract_key, same_as_id=restored_id, previous_sha=link,
                screenshot_sha=screenshot_sha, response_sha=response_sha)).inserted_primary_key[0]
            change_id = conn.execute(Change.__table__.insert().values(
                target_id=state.id, from_version_id=state.last_version_id, to_version_id=version_id,
                kind=verdict.kind, restored_version_id=restored_id, detected_at=at, summary=verdict.summary,
                score=verdict.score, stats=verdict.stats, passages=verdict.passages)).inserted_primary_key[0]
            if verdict.alert:
                self._event(conn, state, verdict.event_kind, verdict.event_summary or verdict.summary,
                            at, change_id, verdict.stats, verdict.passages)
            check_id = conn.execute(Check.__table__.insert().values(
                target_id=state.id, at=at, until=at, count=1, duration_ms=duration_ms,
                http_status=capture.http_status, outcome=outcome, version_id=version_id)).inserted_primary_key[0]
            self._write_state(conn, state, last_check_at=at, last_ok_at=at, status="ok", last_error=None,
                              consecutive_errors=0, consecutive_missing=0, last_check_id=check_id, last_outcome=outcome,
                              last_version_id=version_id, last_raw_sha=capture.raw_sha, etag=capture.etag,
                              last_modified=capture.last_modified, next_due_at=due.at, interval_s=due.interval,
                              unchanged_streak=0, chain_head=chain.link_of(at, capture.final_url, capture.raw_sha,
                                                                           capture.text_sha, link))
        state.last_version_id, state.last_check_id, state.last_outcome = version_id, check_id, outcome
        state.last_raw_sha, state.etag, state.last_modified = capture.raw_sha, capture.etag, capture.last_modified
        state.status, state.consecutive_errors, state.consecutive_missing = "ok", 0, 0
        state.unchanged_streak, state.next_due_at = 0, due.at
        if edited:
            state.last_change_at = at
        return seq

    def _write_state(self, conn, state: TargetState, **values) -> None:
        """A check's outcome on its target row, inside the check's transaction; refused (the
        transaction rolled back) when another process has taken the target over meanwhile."""
        done = conn.execute(update(Target).where(Target.id == state.id, self._mine(Target.__table__)).values(**values))
        if done.rowcount == 0:
            raise ClaimLost(f"{state.name}: being checked by another process; this check is not recorded")

    def _event(self, conn, state: TargetState, kind: str, summary: str, at: datetime, change_id: int | None = None,
               stats: dict | None = None, passages: list | None = None) -> int:
        """An event and its outbox rows, inside the caller's transaction."""
        event_id = conn.execute(Event.__table__.insert().values(
            target_id=state.id, change_id=change_id, kind=kind, created_at=at, summary=summary)).inserted_primary_key[0]
        routes = self.router(state.name, kind, stats or {}, passages or [], self.site_name(conn, state.site_id))
        if routes:
            conn.execute(Alert.__table__.insert(), [
                dict(event_id=event_id, channel=channel, priority=priority, state="pending", attempts=0,
                     created_at=at, next_attempt_at=at) for channel, priority in routes])
        return event_id

    # ---- the alert outbox --------------------------------------------------------------------

    def claim_alerts(self, now: datetime, limit: int = 100, states: tuple[str, ...] = ("pending",),
                     due_only: bool = True, after: int = 0) -> list[Alert]:
        """Claim the alerts in `states` (oldest first, ids above `after`) whose next attempt is due,
        or all of them, that no other process is sending; returns them. mark_alert releases each.
        On PostgreSQL alerts another worker is claiming at this moment are passed over (FOR
        UPDATE SKIP LOCKED), as targets are."""
        table = Alert.__table__
        with self.engine.begin() as conn:
            query = select(Alert.id).where(Alert.state.in_(states), Alert.id > after, self._free(conn, table, now))
            if due_only:
                query = query.where(Alert.next_attempt_at <= now)
            ids = list(conn.execute(query.order_by(Alert.id).limit(limit).with_for_update(skip_locked=True)).scalars())
            self._claim(conn, table, ids, now)
        with self.session() as session:
            return list(session.exec(select(Alert).where(Alert.id.in_(ids), Alert.claimed_by == self.worker)
                                     .order_by(Alert.id)))

    def sending(self, alert_id: int) -> None:
        """An alert is about to be sent. When the previous send of it was cut short (its outcome
        never marked: the process died), this one may deliver it twice: count it."""
        with self.engine.begin() as conn:
            conn.execute(update(Alert).where(Alert.id == alert_id).values(
                redelivered=Alert.redelivered + case((Alert.sending_at.is_not(None), 1), else_=0), sending_at=utcnow()))

    def maybe_delivered(self, alert_id: int) -> None:
        """A send was abandoned before the receiver answered (after its outcome was marked): the
        alert may have arrived, so its next send counts in `redelivered` too."""
        with self.engine.begin() as conn:
            conn.execute(update(Alert).where(Alert.id == alert_id, Alert.state == "pending").values(sending_at=utcnow()))

    def next_alert_due(self) -> datetime | None:
        """When a pending alert is next due; one another process holds, when its claim ends."""
        now = utcnow()
        with self.engine.connect() as conn:
            free = self._free(conn, Alert.__table__, now)
            due = [conn.execute(select(func.min(Alert.next_attempt_at)).where(Alert.state == "pending", free)).scalar(),
                   conn.execute(select(func.min(Alert.claimed_until)).where(Alert.state == "pending", ~free)).scalar()]
        return min((d for d in due if d is not None), default=None)

    def mark_alert(self, alert_id: int, state: str, at: datetime, error: str | None = None,
                   next_attempt_at: datetime | None = None) -> None:
        """An alert's outcome; releases its claim."""
        values = dict(state=state, attempts=Alert.attempts + 1, last_error=error, sending_at=None, claimed_by=None,
                      claimed_until=None)
        if state == "sent":
            values["sent_at"] = at
        if next_attempt_at is not None:
            values["next_attempt_at"] = next_attempt_at
        with self.engine.begin() as conn:
            conn.execute(update(Alert).where(Alert.id == alert_id).values(**values))

    def postpone_alerts(self, channel: str, until: datetime) -> None:
        """A channel's pending alerts wait until `until` (the receiver asked for a pause)."""
        with self.engine.begin() as conn:
            conn.execute(update(Alert).where(Alert.channel == channel, Alert.state == "pending",
                                             Alert.next_attempt_at < until).values(next_attempt_at=until))

    def alert_context(self, alert: Alert) -> dict:
        """Everything an alert's message is rendered from."""
        with self.session() as session:
            event = session.get(Event, alert.event_id)
            target = session.get(Target, event.target_id)
            change = session.get(Change, event.change_id) if event.change_id else None
            seqs = {}
            if change is not None:
                ids = [i for i in (change.from_version_id, change.to_version_id, change.restored_version_id) if i]
                seqs = {v.id: v for v in session.exec(select(Version).where(Version.id.in_(ids)))}
        return {"alert": alert, "event": event, "target": target, "change": change, "versions": seqs}

    # ---- reading what a check needs (everything else a reader wants: monitor/read.py) ----------

    def version(self, version_id: int):
        """One version's columns as a read-only row (the check pipeline's view; no ORM object)."""
        with self.engine.connect() as conn:
            row = conn.execute(select(*Version.__table__.columns).where(Version.id == version_id)).first()
        if row is None:
            raise StoreError(f"no version with id {version_id}")
        return row

    def earliest_with_text(self, target_id: int, text_sha: str, exclude_id: int | None) -> Earlier | None:
        """The first version of a target whose text equals text_sha, other than exclude_id."""
        query = (select(Version.id, Version.seq, Version.first_seen)
                 .where(Version.target_id == target_id, Version.text_sha == text_sha))
        if exclude_id is not None:
            query = query.where(Version.id != exclude_id)
        with self.engine.connect() as conn:
            row = conn.execute(query.order_by(Version.seq).limit(1)).first()
        return Earlier(*row) if row else None

