"""The daemon: one dispatcher for every target, the database as the source of truth.

Each target's next due time lives in the database, so a restart resumes the schedule; overdue
targets are spread over a short window instead of all firing at once. No target gets a job of its
own: one dispatcher reads the targets that are due from the database (configured targets and a
site's posts alike, soonest first) and claims them in one transaction, and keeps at most a few
checks per host (per site, for posts) in flight, so the daemon's memory does not grow with the
number of targets and a slow host never holds up the others. What a finished check recorded is
written and its claim released in batches before the next look, so thousands of checks a minute
cost a few statements each second rather than several per check. Sites whose discovery is due
are claimed the same way, at most once a second. The claims are what let several daemons share
one database (docs/fleet.md): each takes what no other holds. SIGTERM/SIGINT let checks in
flight finish; SIGHUP or an edited targets.toml reloads the targets without a restart.
"""
from __future__ import annotations

import asyncio
import logging
import signal
import tempfile
import threading
import time
from collections import Counter
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from . import config, sites
from .alerts.outbox import Outbox
from .alerts.routing import Router
from .check import QUEUED_PER_HOST, Checker
from .config import Settings, Target
from .fetch import Fetcher
from .fleet import LIVE_WITHIN, others_live
from .models import utcnow
from .store import Store
from .sync import sync_targets
from .worker import Presence

log = logging.getLogger("monitor.daemon")

OVERDUE_SPREAD = 60.0  # seconds over which targets found overdue at start are spread
WATCH_EVERY = 2.0  # seconds between looks at targets.toml's modification time
LOG_LEVELS = {"unchanged": logging.DEBUG, "deferred": logging.DEBUG, "error": logging.WARNING,
              "missing": logging.WARNING}  # a check's log line by its outcome; INFO otherwise
DISPATCH_EVERY = 1.0  # seconds between looks for due targets (sooner when checks finished or a discovery found some)
# A look costs a few statements whatever it finds: once most of the room is in use, the next one
# waits until this share of the room is free (or DISPATCH_EVERY), so freed slots are filled a few
# at a time rather than one look per finished check.
DISPATCH_SHARE = 0.25
DISCOVER_EVERY = 1.0  # seconds between looks for sites whose discovery is due
SCAN_PER_SLOT = 8  # due configured targets read per free slot (some are on hosts already busy)


def first_runs(targets: list[Target], next_due: dict[str, datetime | None], interval_of, now: datetime) -> dict[str, datetime]:
    """When each target should first run: its stored due time, or, when overdue or never
    checked, a slot spread evenly over a window (never more than the target's interval)."""
    overdue = [t for t in targets if next_due.get(t.name) is None or next_due[t.name] <= now]
    late = {t.name for t in overdue}  # (by name: comparing 10,000 targets with each other took minutes)
    runs = {t.name: next_due[t.name] for t in targets if t.name not in late}
    for i, target in enumerate(overdue):
        window = min(OVERDUE_SPREAD, interval_of(target))
        runs[target.name] = now + timedelta(seconds=window * i / max(len(overdue), 1))
    return runs


HEARTBEAT = ".heartbeat"
HEALTHY_WITHIN = LIVE_WITHIN  # seconds: `monitor health` fails when the daemon's last beat is older


def heartbeat_path(settings: Settings):
    return settings.snapshots_dir / HEARTBEAT


def beat(settings: Settings) -> None:
    """Touch the heartbeat file: proof for `monitor health` (and Docker's HEALTHCHECK) that the
    daemon's event loop is alive. Raises OSError when the snapshots folder cannot be written."""
    path = heartbeat_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()


def health(settings: Settings) -> tuple[bool, str]:
    """Whether the daemon for this config is alive and can save what it captures, and a line
    saying so: its heartbeat exists, the snapshots folder (captures and heartbeat) takes a write
    (tried, not judged by permission bits: a read-only mount stops root too), and the heartbeat
    is recent."""
    path = heartbeat_path(settings)
    try:
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return False, (f"no daemon heartbeat at {path}: is `monitor run` running with this config? (a daemon "
                       "that stopped cleanly removes it)")
    except OSError as exc:
        return False, f"cannot read the daemon heartbeat {path}: {exc.strerror}"
    try:
        with tempfile.TemporaryFile(dir=path.parent):
            pass
    except OSError as exc:
        return False, f"the daemon cannot write to {path.parent}: {exc.strerror}; captures are not being saved"
    if age > HEALTHY_WITHIN:
        return False, (f"daemon heartbeat is {age:.0f}s old (limit {HEALTHY_WITHIN:.0f}s): the daemon is stuck "
                       "or stopped")
    return True, f"ok: daemon heartbeat {age:.0f}s ago"


class Delivery:
    """The outbox's delivery loop in a thread of its own, on an event loop of its own. On the
    checks' loop, each step of a send (write, read the answer, the next alert) would wait for a
    whole turn of that loop, which under load runs several pages' parsing and diffing: alerts
    would fall minutes behind. Here a step waits only for the interpreter's switch between
    threads (a few milliseconds). The outbox and its HTTP client are used from this thread only;
    the store is safe to share (a connection per call)."""

    def __init__(self, outbox: Outbox):
        self.outbox = outbox
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, name="alert-delivery", daemon=True)

    def start(self) -> None:
        self._thread.start()
        self._started.wait()

    def _run(self) -> None:
        from .loop import run

        try:
            run(self._main())
        except Exception:
            log.exception("alert delivery stopped; pending alerts wait for the next start")
        finally:
            self._started.set()

    async def _main(self) -> None:
        self._loop, self._stopping = asyncio.get_running_loop(), asyncio.Event()
        self._started.set()
        async with self.outbox:
            # Alerts left pending by an earlier run (or a crash) go out first.
            await self.outbox.run(self._stopping)

    def wake(self) -> None:
        """A check queued alerts (callable from any thread)."""
        self._call(self.outbox.wake.set)

    async def stop(self) -> None:
        """End the delivery loop after the send under way, and wait for the thread."""
        self._call(self._stopping.set)
        self.wake()
        await asyncio.to_thread(self._thread.join)

    def _call(self, func) -> None:
        try:
            self._loop.call_soon_threadsafe(func)
        except (AttributeError, RuntimeError):  # the thread has ended (logged there): the alerts wait in the outbox
            pass


class Daemon:
    def __init__(self, settings: Settings, store: Store, fetcher: Fetcher):
        self.settings = settings
        self.store = store
        self.checker = Checker(settings, store, fetcher)
        self.outbox = Outbox(store, settings)
        self.delivery = Delivery(self.outbox)
        self.targets: dict[str, Target] = {}  # configured targets by name
        self.names: dict[int, str] = {}  # configured target id -> name
        self.in_flight: set[asyncio.Task] = set()
        self.checking: dict[int, str | int] = {}  # target id -> its host, or its site id for a post
        self.calibrating: set[int] = set()  # new targets waiting for their second fetch
        self.finished: list[int] = []  # claims to release once what their checks recorded is written
        self.due = asyncio.Event()  # a check finished (its slot is free), or there is new work
        self.look_now = False  # new work (targets reloaded, posts discovered): look at once
        self.sites: dict[str, config.Site] = {}  # configured sites by name
        self.discovering: set[int] = set()  # ids of the sites whose discovery runs here now
        self._next_discovery_look = 0.0
        self.stopping = asyncio.Event()
        self.reload_requested = asyncio.Event()
        self._config_watch = config.FileWatch(settings.path)
        self._beat_error: str | None = None
        self.presence = Presence(settings, store, fetcher)  # heartbeat row, metrics (monitor/worker.py)

    async def _check(self, target: Target, state) -> None:
        """One check, then what follows it; the claim is released by the dispatcher's next look
        (after what the check recorded is written)."""
        try:
            result = await self.checker.check(target, state)
            self.checking.pop(state.id, None)  # the slot is free while a new target waits to calibrate
            self.due.set()
            await self._after_check(target, state, result)
        finally:
            self.checking.pop(state.id, None)
            self.calibrating.discard(state.id)
            self.finished.append(state.id)
            self.due.set()

    async def _after_check(self, target: Target, state, result) -> None:
        """What follows any check in the daemon: wake the outbox, calibrate a new target, log."""
        self.presence.checked(result)
        if result.events:
            self.delivery.wake()
        log.log(LOG_LEVELS.get(result.outcome, logging.INFO), "%s", result.line())
        if result.outcome == "first" and self.checker.calibrates(target):
            self.calibrating.add(state.id)
            await asyncio.sleep(self.settings.monitor.calibrate_delay)
            await self.checker.calibrate(target, state)

    def discover_due(self) -> None:
        """Start the discoveries of the configured sites that are due and that no other process
        is running (claimed in the database; looked for at most every DISCOVER_EVERY seconds)."""
        if not self.sites or self.stopping.is_set() or time.monotonic() < self._next_discovery_look:
            return
        self._next_discovery_look = time.monotonic() + DISCOVER_EVERY
        for row in self.store.claim_sites(utcnow(), self.sites, skip=self.discovering):
            self.discovering.add(row.id)
            task = asyncio.create_task(self._discover(row.id, self.sites[row.name]))
            self.in_flight.add(task)  # a stop lets it finish, as it does checks
            task.add_done_callback(self.in_flight.discard)

    async def _discover(self, site_id: int, site: config.Site) -> None:
        """One claimed discovery; its claim is released when it is over (a failure that recorded
        nothing makes the site due again after its interval, not at once)."""
        retry_at = None
        try:
            found = await sites.discover_site(self.settings, self.store, self.checker.fetcher, site)
        except Exception:  # a bug or a store failure costs this discovery, not the daemon
            log.exception("discovery of %s failed", site.name)
            retry_at = utcnow() + timedelta(seconds=site.discover_interval)
        else:
            level = logging.WARNING if found.errors else logging.INFO if found.new else logging.DEBUG
            log.log(level, "%s", found.line())
            if found.new:
                self.look_now = True
                self.due.set()
        finally:
            self.discovering.discard(site_id)
            try:
                self.store.release_site(site_id, retry_at)
            except Exception:  # the claim lapses with its lease
                log.exception("could not release the discovery claim of %s", site.name)

    def _settle(self) -> None:
        """Write the unchanged checks held back for a batch, then release the finished checks'
        claims (a failure leaves them to lapse when their lease ends)."""
        done, self.finished = self.finished, []
        try:
            self.store.flush()
            if done:
                self.store.release_targets(done)
        except Exception:
            log.exception("could not write finished checks or release their claims")

    def dispatch(self) -> int:
        """Start the checks of targets that are due, soonest first, as far as there is room: at
        most `concurrency` x 2 in flight overall, and per host (per site, for a site's posts) no
        more than the fetcher lets through to a host plus a small queue, so a slow or paused
        host never fills the room the others need."""
        self._settle()
        room = self.settings.monitor.concurrency * 2 - len(self.checking)
        if room <= 0 or self.stopping.is_set():
            return 0
        per_key = self.settings.monitor.per_host + QUEUED_PER_HOST
        busy = Counter(self.checking.values())
        now = utcnow()
        site_names = self.store.site_names() if self.settings.sites else {}
        site_room = {i: min(room, per_key - busy[i]) for i, n in site_names.items() if n in self.sites}
        picked: dict[int, str | int] = {}  # target id -> its host, or its site id for a post

        def pick(rows) -> list[int]:
            for row in sorted(rows, key=lambda r: (r.next_due_at is not None, r.next_due_at or now)):
                if len(picked) >= room:
                    break
                if row.site_id is None and row.id not in self.names:
                    continue  # (no longer configured here: another worker's newer config, say)
                key = row.site_id if row.site_id is not None else urlsplit(row.url).netloc.lower()
                if busy[key] < per_key:
                    busy[key] += 1
                    picked[row.id] = key
            return list(picked)

        held = self.store.claim_due(now, pick, limit=room * SCAN_PER_SLOT if self.names else 0,
                                    sites={i: n for i, n in site_room.items() if n > 0},
                                    skip=[*self.checking, *self.calibrating])
        # On SQLite another process may have checked one between the look and the claim.
        held = {i: s for i, s in held.items() if s.next_due_at is None or s.next_due_at <= now}
        configured = [(self.targets[self.names[i]], s) for i, s in held.items() if i in self.names]
        posts = sites.posts(self.settings, [s for i, s in held.items() if i not in self.names], site_names)
        for target, state in configured + posts:
            self.checking[state.id] = picked[state.id]
            task = asyncio.create_task(self._check(target, state))
            self.in_flight.add(task)
            task.add_done_callback(self.in_flight.discard)
        self.finished += [i for i in picked if i not in self.checking]  # claimed (or not) but not started
        return len(self.checking)

    async def _dispatcher(self) -> None:
        while not self.stopping.is_set():
            self.due.clear()
            self.look_now = False
            try:
                self.dispatch()
            except Exception:
                log.exception("could not read the targets that are due")
            try:
                self.discover_due()
            except Exception:
                log.exception("could not read the sites whose discovery is due")
            await self._next_look()

    async def _next_look(self) -> None:
        """Wait until the next look for due targets: DISPATCH_EVERY, or sooner once new work is
        announced or checks finished and at least DISPATCH_SHARE of the room is free."""
        slots = self.settings.monitor.concurrency * 2
        enough = max(1, int(slots * DISPATCH_SHARE))
        deadline = time.monotonic() + DISPATCH_EVERY
        while (left := deadline - time.monotonic()) > 0:
            try:
                await asyncio.wait_for(self.due.wait(), left)
            except TimeoutError:
                return
            if self.look_now or slots - len(self.checking) >= enough:
                await asyncio.sleep(0.01)  # let a burst of finished checks free their slots together
                return
            self.due.clear()

    def schedule(self, settings: Settings) -> None:
        """Make the dispatcher's targets and sites match settings."""
        wanted = {t.name: t for t in settings.targets}
        states = sync_targets(settings, self.store)
        changed = [t for n, t in wanted.items() if self.targets.get(n) != t
                   or self.settings.interval(t) != settings.interval(t)]
        self.settings = settings
        self.checker.settings = settings
        self.outbox.settings = settings
        self.store.router = Router(settings)
        due = {n: s.next_due_at for n, s in states.items()}
        if not self.targets and others_live(self.store.engine):
            # Joining a running fleet: what is overdue is the other workers' queue, not a backlog
            # left by a stop; moving it would make those targets late. New targets are spread.
            changed = [t for t in changed if due[t.name] is None]
        runs = first_runs(changed, due, settings.interval, utcnow())
        self.store.set_due({states[n].id: at for n, at in runs.items() if at != due[n]},
                           seen={s.id: s.last_check_id for s in states.values()})
        self.targets = wanted
        self.names = {states[n].id: n for n in wanted}
        self._schedule_sites(settings)
        self.look_now = True
        self.due.set()
        log.info("watching %d targets and %d sites", len(self.targets), len(self.sites))

    def _schedule_sites(self, settings: Settings) -> None:
        """The sites to discover, each when its row says (a new site at once). A site whose
        sources or filters changed while the daemon ran is discovered at once."""
        wanted = {s.name: s for s in settings.sites}
        self.store.discover_now([n for n, s in wanted.items() if n in self.sites and self.sites[n] != s], utcnow())
        self.sites = wanted
        self._next_discovery_look = 0.0

    def reload(self) -> None:
        try:
            settings = config.load(self.settings.path)
            self.schedule(settings)
        except config.ConfigError as exc:
            log.error("not reloading: %s", exc)
            return
        log.info("reloaded %s", self.settings.path)

    def _beat(self) -> None:
        """The heartbeat; a failure to write it is logged when it starts and when it ends (`monitor
        health` reports it meanwhile), and stops nothing."""
        self.presence.beat(len(self.checking))
        if not self.presence.files:
            return
        try:
            beat(self.settings)
        except OSError as exc:
            error = f"{exc.filename or heartbeat_path(self.settings)}: {exc.strerror}"
            if error != self._beat_error:
                log.error("cannot write the heartbeat (%s); `monitor health` reports the daemon unhealthy "
                          "until it can", error)
            self._beat_error = error
            return
        if self._beat_error:
            log.info("heartbeat written again")
        self._beat_error = None

    async def _watch_config(self) -> None:
        """Beat, and reload when asked or when targets.toml was saved, until the daemon stops: a
        failure here is logged and the watch goes on (it alone keeps the heartbeat and reloads)."""
        while not self.stopping.is_set():
            self._beat()
            try:
                await asyncio.wait_for(self.reload_requested.wait(), WATCH_EVERY)
            except TimeoutError:
                pass
            try:
                saved = self._config_watch.changed()
                if self.reload_requested.is_set() or saved:
                    self.reload_requested.clear()
                    if not self.stopping.is_set():
                        self.reload()
            except Exception:
                log.exception("reloading %s failed", self.settings.path)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)
        loop.add_signal_handler(signal.SIGHUP, self.reload_requested.set)
        self.schedule(self.settings)
        self.delivery.start()
        self.presence.start()
        try:
            async with self.store.holding_claims():
                with self.store.batch():  # unchanged checks are written in batches (see _settle)
                    watcher = asyncio.create_task(self._watch_config())
                    dispatcher = asyncio.create_task(self._dispatcher())
                    log.info("daemon started (config %s)", self.settings.path)
                    await self.stopping.wait()
                    log.info("stopping: waiting for %d checks in flight", len(self.in_flight))
                    watcher.cancel()
                    dispatcher.cancel()
                    if self.in_flight:
                        await asyncio.gather(*self.in_flight, return_exceptions=True)
                    self._settle()
        finally:
            await self.delivery.stop()
            self.presence.stop()
        self.store.checkpoint()
        heartbeat_path(self.settings).unlink(missing_ok=True)  # a stopped daemon is not healthy
        log.info("stopped")
