"""The store's part that keeps the targets and sites tables in step with the config and
with discovery: which pages are watched, their rules, when each is due."""
from __future__ import annotations

from datetime import datetime
from typing import Iterable

from sqlalchemy import bindparam, func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from .models import Site, Target, Version, utcnow
from .store_types import BATCH_SIZE, NameTaken, TargetState, Watched, _STATE_COLUMNS


_SET_DUE = update(Target).where(Target.id == bindparam("b_tid")).values(next_due_at=bindparam("b_due"))
_SET_DUE_UNCHECKED = (update(Target).where(Target.id == bindparam("b_tid"),
                                            Target.last_check_id.is_not_distinct_from(bindparam("b_seen")))
                      .values(next_due_at=bindparam("b_due")))


class TargetRows:
    """Targets and sites: config sync, discovered posts, rules, due times (part of Store)."""


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
