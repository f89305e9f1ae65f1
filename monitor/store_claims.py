"""The store's part that lets one process at a time check a target, discover a site or send an
alert: claims with leases (monitor/lease.py), SKIP LOCKED on PostgreSQL."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Iterable

from sqlalchemy import or_, update
from sqlmodel import select

from . import lease
from .models import Alert, Site, Target, utcnow
from .store_types import BATCH_SIZE, TargetState, _STATE_COLUMNS


class ClaimRows:
    """Claims on targets, sites and alerts (part of Store)."""

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
