"""Several `monitor run` workers on one database: who is alive, what each holds, and the hosts
every one of them must be polite to.

Workers: each daemon writes its row in `workers` (monitor/lease.py's host:pid:start, its last
heartbeat, its checks) every few seconds and deletes it when it stops; a row whose beat is older
than LIVE_WITHIN belongs to a worker that died or hangs (its claims lapse with their lease).

Hosts: on a shared server database (PostgreSQL), a host's `per_host` request places, the least
time between two of its requests (`host_delay`, a robots.txt Crawl-delay) and a pause it asked for
(429, or 503 with Retry-After) hold for the whole fleet: SharedHosts keeps them in `host_slots`
and `hosts`, beside the fetcher's own per-process gate (monitor/fetch.py). A place is held for one
request and released after it; one held by a worker that died frees itself when its time is up
(a request never outlasts `timeout`), or at once when the worker was of this machine and is
known to have ended (as its claims do, monitor/lease.py). Times there are Unix times: the
workers' clocks must agree (NTP), as for the claims' leases. On SQLite (one machine) the
per-process gates alone serve.
"""
from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timedelta, timezone
from typing import NamedTuple

from sqlalchemy import case, delete, exists, func, or_, select, update

from . import lease
from .blobs import insert_for, insert_ignoring
from .models import Alert, Host, HostSlot, Site, Target, Worker, utcnow
from .storage import STORAGE_ERRORS
from .times import iso

log = logging.getLogger("monitor.fleet")

LIVE_WITHIN = 60.0  # seconds: a worker whose last heartbeat is older is not alive
FORGET_AFTER = timedelta(days=1)  # a dead worker's row is dropped this long after its last beat
SLOT_MARGIN = 30.0  # seconds a request place is held beyond the request's own timeout
POLL_FIRST, POLL_MOST = 0.05, 1.0  # seconds between looks while a host's places are all taken
PAUSES_SHOWN = 50  # paused hosts listed by name (the count covers them all)
CLAIMS = {"targets": Target.__table__, "alerts": Alert.__table__, "sites": Site.__table__}  # what is claimed, where


# ---- workers --------------------------------------------------------------------------------

def _upsert(conn, table, values: dict, keys: list[str], changes):
    """INSERT `values`, or where a row with those `keys` is there, UPDATE it with `changes(new)`
    (`new`: the row that was to be inserted)."""
    statement = insert_for(conn)(table).values(**values)
    return statement.on_conflict_do_update(index_elements=keys, set_=changes(statement.excluded))


def beat(engine, started_at: datetime, checks: int, in_flight: int) -> None:
    """This worker's heartbeat (and, now and then, forget workers long dead)."""
    me, now = lease.worker_id(), utcnow()
    with engine.begin() as conn:
        conn.execute(_upsert(conn, Worker.__table__,
                             dict(id=me, host=lease.machine(), pid=int(me.split(":")[1]), started_at=started_at,
                                  beat_at=now, checks=checks, in_flight=in_flight),
                             ["id"], lambda new: dict(beat_at=new.beat_at, checks=new.checks, in_flight=new.in_flight)))
        conn.execute(delete(Worker).where(Worker.beat_at < now - FORGET_AFTER))


def leave(engine) -> None:
    """This worker stops: its row goes (a stopped worker is not a dead one)."""
    with engine.begin() as conn:
        conn.execute(delete(Worker).where(Worker.id == lease.worker_id()))


def _age(when: datetime | None, now: datetime) -> float | None:
    if when is None:
        return None
    if when.tzinfo is None:  # SQLite hands times back naive; they are UTC
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (now - when).total_seconds())


def workers(engine) -> list[dict]:
    """Every worker with a heartbeat row, and every other process holding a claim (a `monitor
    check` has no heartbeat), with the claims each holds: targets, alerts, sites, host request places.
    A state each: live (beat within LIVE_WITHIN), stale (beat older: dead or hung, on whatever
    machine), gone (a process of this machine that has ended: killed, crashed), or no heartbeat."""
    now = utcnow()
    rows = {}
    with engine.connect() as conn:
        for w in conn.execute(select(Worker).order_by(Worker.started_at)):
            age = _age(w.beat_at, now)
            state = "gone" if lease.is_gone(w.id) else "live" if age <= LIVE_WITHIN else "stale"
            rows[w.id] = dict(worker=w.id, state=state, host=w.host, pid=w.pid, started_at=w.started_at,
                              beat_age=age, live=state == "live", checks=w.checks, in_flight=w.in_flight,
                              targets=0, alerts=0, sites=0, host_places=0)
        for key, table in CLAIMS.items():
            for holder, count in conn.execute(
                    select(table.c.claimed_by, func.count()).where(table.c.claimed_by.is_not(None),
                                                                  table.c.claimed_until >= now)
                    .group_by(table.c.claimed_by)):
                _row(rows, holder)[key] = count
        for holder, count in conn.execute(
                select(HostSlot.holder, func.count()).where(HostSlot.holder.is_not(None), HostSlot.until >= time.time())
                .group_by(HostSlot.holder)):
            _row(rows, holder)["host_places"] = count
    return list(rows.values())


def others_live(engine) -> bool:
    """Whether another worker of the fleet is alive (this one joins a running fleet)."""
    me = lease.worker_id()
    return any(w["live"] for w in workers(engine) if w["worker"] != me)


def _row(rows: dict, holder: str) -> dict:
    if holder not in rows:
        host, _, rest = holder.partition(":")
        pid = rest.partition(":")[0]
        state = "gone" if lease.is_gone(holder) else "no heartbeat"  # (a `monitor check`, say)
        rows[holder] = dict(worker=holder, state=state, host=host, pid=int(pid) if pid.isdigit() else None,
                            started_at=None, beat_age=None, live=False, checks=None, in_flight=None, targets=0,
                            alerts=0, sites=0, host_places=0)
    return rows[holder]


def paused_hosts(engine) -> list[tuple[str, float, str]]:
    """Hosts paused now, for the whole fleet: (host, seconds left, why), longest first."""
    now = time.time()
    with engine.connect() as conn:
        return [(h, until - now, why or "") for h, until, why in conn.execute(
            select(Host.host, Host.paused_until, Host.why).where(Host.paused_until > now)
            .order_by(Host.paused_until.desc()))]


def report(engine, late_after: float) -> dict:
    """The fleet at a glance: workers alive and not, claims held and lapsed, checks overdue by
    more than `late_after` seconds, the alert outbox, paused hosts."""
    now = utcnow()
    found = workers(engine)
    with engine.connect() as conn:
        claims = {}
        for name, table in CLAIMS.items():
            held, lapsed = conn.execute(select(
                func.count().filter(table.c.claimed_until >= now),
                func.count().filter(table.c.claimed_until < now)).where(table.c.claimed_by.is_not(None))).one()
            claims[name] = {"held": held, "lapsed": lapsed}
        overdue = conn.execute(select(func.count()).where(
            Target.active, Target.next_due_at < now - timedelta(seconds=late_after))).scalar()
        pending, oldest = conn.execute(select(func.count(), func.min(Alert.created_at))
                                       .where(Alert.state == "pending")).one()
        failed = conn.execute(select(func.count()).where(Alert.state == "failed")).scalar()
    paused = paused_hosts(engine)
    return {
        "workers": found,
        "live": sum(1 for w in found if w["live"]),
        "stale": sum(1 for w in found if w["state"] in ("stale", "gone")),
        "claims": claims,
        "overdue": overdue,
        "late_after": late_after,
        "alerts": {"pending": pending, "oldest_pending_age": _age(oldest, now), "failed": failed},
        "paused_hosts": [{"host": h, "seconds_left": left, "why": why} for h, left, why in paused[:PAUSES_SHOWN]],
        "hosts_paused": len(paused),
    }


def worker_list(engine) -> list[dict]:
    """`monitor workers`: each worker's state, its times in ISO 8601, how long it has been up."""
    now = utcnow()
    rows = []
    for w in workers(engine):
        started = w.pop("started_at")
        w["started_at"] = iso(started)
        w["up"] = _age(started, now)
        rows.append(w)
    return rows


# ---- hosts, for the whole fleet ----------------------------------------------------------------

def shared_hosts(store, settings) -> "SharedHosts | None":
    """The fleet-wide host gate for a server database, None on SQLite (one machine)."""
    if store is None or store.engine.dialect.name == "sqlite":
        return None
    return SharedHosts(store.engine, settings.timeout)


class Turn(NamedTuple):
    """What asking for a host's turn found: a place, or why not (paused; spaced until next_start)."""

    slot: int | None = None
    paused_until: float | None = None
    why: str = ""
    next_start: float | None = None


class SharedHosts:
    """A host's request places, spacing and pause, held in the database for every worker.

    monitor/fetch.py asks for a turn once its own gate lets a request of the host through:
    `turn` waits for one of the host's places (and its spacing), or returns None when the host
    is paused, after telling the fetcher's host state until when (it then waits or defers as for
    a pause it met itself); `leave` gives the place back after the request."""

    def __init__(self, engine, timeout: float):
        self.engine = engine
        self.hold = timeout + SLOT_MARGIN
        self._ready: set[tuple[str, int]] = set()  # (host, places) whose rows exist
        self._gone = lease.Gone()  # a place held by a process of this machine that ended is free at once
        self._failing = False

    def _places(self, conn, name: str, per_host: int) -> None:
        if (name, per_host) in self._ready:
            return
        conn.execute(insert_ignoring(conn, Host.__table__).values(host=name))
        conn.execute(insert_ignoring(conn, HostSlot.__table__), [dict(host=name, slot=i) for i in range(per_host)])
        self._ready.add((name, per_host))

    def _take(self, name: str, per_host: int, delay: float) -> Turn:
        """One statement takes a free place of the host unless it is paused; with spacing, one more
        reserves the host's next start (or, when that is not yet, gives the place back)."""
        now = time.time()
        me = lease.worker_id()
        slots = HostSlot.__table__
        paused = exists().where(Host.host == name, Host.paused_until > now)
        with self.engine.connect() as conn:
            with conn.begin() as transaction:
                gone = self._gone.holders("host_slots", lambda: conn.execute(select(slots.c.holder).distinct().where(
                    slots.c.holder.is_not(None), slots.c.holder != me, slots.c.until >= now)).scalars())
                free = or_(slots.c.holder.is_(None), slots.c.until < now, slots.c.holder.in_(gone))
                self._places(conn, name, per_host)
                pick = (select(slots.c.slot).where(slots.c.host == name, slots.c.slot < per_host, free)
                        .order_by(slots.c.slot).limit(1).with_for_update(skip_locked=True).scalar_subquery())
                slot = conn.execute(update(slots).where(slots.c.host == name, slots.c.slot == pick, free, ~paused)
                                    .values(holder=me, until=now + self.hold).returning(slots.c.slot)).scalar()
                if slot is not None and delay > 0 and not conn.execute(update(Host).where(
                        Host.host == name, or_(Host.next_start.is_(None), Host.next_start <= now))
                        .values(next_start=now + delay)).rowcount:
                    transaction.rollback()
                    slot = None
            if slot is not None:
                return Turn(slot)
            row = conn.execute(select(Host.paused_until, Host.why, Host.next_start).where(Host.host == name)).first()
        if row is not None and row.paused_until is not None and row.paused_until > now:
            return Turn(paused_until=row.paused_until, why=row.why or "")
        if delay > 0 and row is not None and row.next_start is not None and row.next_start > now:
            return Turn(next_start=min(row.next_start, now + delay))
        return Turn()

    async def turn(self, host, per_host: int, delay: float) -> int | None:
        """A place for one request to `host` (monitor/fetch.py's _Host), once free; None when the
        host is paused for the fleet (its pause is then set on `host`, as if met here)."""
        wait = POLL_FIRST
        while True:
            try:
                turn = self._take(host.name, per_host, delay)
            except STORAGE_ERRORS as exc:  # the database is out of reach: the process's own gate serves
                if not self._failing:
                    log.error("cannot share hosts' request limits through the database (%s); each worker "
                              "keeps its own until it can", type(exc).__name__)
                self._failing = True
                return -1
            self._failing = False
            if turn.slot is not None:
                return turn.slot
            if turn.paused_until is not None:
                left = turn.paused_until - time.time()
                host.resume = time.monotonic() + left
                host.resume_at = datetime.now(timezone.utc) + timedelta(seconds=left)
                host.why = turn.why
                return None
            if turn.next_start is not None:  # spaced: another worker's request started just now
                await asyncio.sleep(max(0.0, turn.next_start - time.time()))
                continue
            await asyncio.sleep(wait)  # every place taken
            wait = min(wait * 2, POLL_MOST)

    def leave(self, host, slot: int) -> None:
        if slot < 0:
            return
        try:
            with self.engine.begin() as conn:
                conn.execute(update(HostSlot).where(HostSlot.host == host.name, HostSlot.slot == slot,
                                                    HostSlot.holder == lease.worker_id())
                             .values(holder=None, until=None))
        except STORAGE_ERRORS:  # the place frees itself when its time is up
            log.warning("could not give back a request place of %s", host.name, exc_info=True)

    def pause(self, host, seconds: float, why: str) -> None:
        """The host asked us to back off for `seconds`: every worker waits (a longer pause that
        another worker met stays)."""
        until = time.time() + seconds
        try:
            with self.engine.begin() as conn:
                conn.execute(_upsert(conn, Host.__table__, dict(host=host.name, paused_until=until, why=why), ["host"],
                                     lambda new: dict(
                                         paused_until=case((or_(Host.paused_until.is_(None),
                                                                Host.paused_until < new.paused_until),
                                                            new.paused_until), else_=Host.paused_until),
                                         why=case((or_(Host.paused_until.is_(None),
                                                       Host.paused_until < new.paused_until), new.why),
                                                  else_=Host.why))))
        except STORAGE_ERRORS:
            log.warning("could not tell the fleet that %s asked for a pause", host.name, exc_info=True)
