"""The daemon: one APScheduler interval job per configured target and per site's discovery; the
database as the source of truth.

Each target's next due time lives in the database, so a restart resumes the schedule; overdue
targets are spread over a short window instead of all firing at once. A site's posts (thousands)
get no job each: one dispatcher reads the posts that are due from the database and keeps at most
a few checks per host in flight, so the daemon's memory does not grow with the number of posts
and a slow host never holds up the others. SIGTERM/SIGINT let checks in flight finish; SIGHUP or
an edited targets.toml reloads the targets without a restart.
"""
from __future__ import annotations

import asyncio
import logging
import signal
import tempfile
import time
from datetime import datetime, timedelta, timezone

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from . import config, sites
from .alerts.outbox import Outbox, Router
from .check import QUEUED_PER_HOST, Checker
from .config import Post, Settings, Target
from .fetch import Fetcher
from .models import utcnow
from .store import Store

log = logging.getLogger("monitor.daemon")

OVERDUE_SPREAD = 60.0  # seconds over which targets found overdue at start are spread
WATCH_EVERY = 2.0  # seconds between looks at targets.toml's modification time
LOG_LEVELS = {"unchanged": logging.DEBUG, "deferred": logging.DEBUG, "error": logging.WARNING,
              "missing": logging.WARNING}  # a check's log line by its outcome; INFO otherwise
DISPATCH_EVERY = 1.0  # seconds between looks for due posts (sooner when a discovery found some)


def first_runs(targets: list[Target], next_due: dict[str, datetime | None], interval_of, now: datetime) -> dict[str, datetime]:
    """When each target should first run: its stored due time, or, when overdue or never
    checked, a slot spread evenly over a window (never more than the target's interval)."""
    overdue = [t for t in targets if next_due.get(t.name) is None or next_due[t.name] <= now]
    runs = {t.name: next_due[t.name] for t in targets if t not in overdue}
    for i, target in enumerate(overdue):
        window = min(OVERDUE_SPREAD, interval_of(target))
        runs[target.name] = now + timedelta(seconds=window * i / max(len(overdue), 1))
    return runs


HEARTBEAT = ".heartbeat"
HEALTHY_WITHIN = 60.0  # seconds: `monitor health` fails when the daemon's last beat is older


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
        return False, f"no daemon heartbeat at {path}: is `monitor run` running with this config?"
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


class Daemon:
    def __init__(self, settings: Settings, store: Store, fetcher: Fetcher):
        self.settings = settings
        self.store = store
        self.checker = Checker(settings, store, fetcher)
        self.outbox = Outbox(store, settings)
        self.scheduler = AsyncIOScheduler(timezone=timezone.utc)
        self.targets: dict[str, Target] = {}
        self.in_flight: set[asyncio.Task] = set()
        self.posts_in_flight: dict[int, int] = {}  # target id -> site id
        self.posts_due = asyncio.Event()
        self.site_jobs: dict[str, config.Site] = {}
        self.stopping = asyncio.Event()
        self.reload_requested = asyncio.Event()
        self._config_watch = config.FileWatch(settings.path)
        self._beat_error: str | None = None

    async def run_check(self, name: str) -> None:
        target = self.targets.get(name)
        if target is None or self.stopping.is_set():
            return
        state = self.store.state(name)
        if state is None:
            return
        state = self.store.claim_targets([state.id]).get(state.id)
        if state is None:
            log.info("%s: skipped, being checked by another process", name)
            return
        task = asyncio.create_task(self.checker.check(target, state))
        self.in_flight.add(task)
        task.add_done_callback(self.in_flight.discard)
        try:
            result = await asyncio.shield(task)
        except asyncio.CancelledError:  # the daemon is stopping; it waits for the task itself
            return  # (and closing the store releases the claim)
        try:
            await self._after_check(target, result)
        finally:
            self._release(state.id)

    def _release(self, target_id: int) -> None:
        try:
            self.store.release_targets([target_id])
        except Exception:  # the claim then lapses when its lease ends
            log.exception("could not release a claim")

    async def _after_check(self, target: Target, result) -> None:
        """What follows any check in the daemon: wake the outbox, calibrate a new target, log."""
        if result.events:
            self.outbox.wake.set()
        if result.outcome == "first" and self.checker.calibrates(target):
            await asyncio.sleep(self.settings.monitor.calibrate_delay)
            state = self.store.state(target.name)
            if state is not None:
                await self.checker.calibrate(target, state)
        log.log(LOG_LEVELS.get(result.outcome, logging.INFO), "%s", result.line())

    async def run_discovery(self, name: str) -> None:
        site = self.settings.site(name)
        if site is None or self.stopping.is_set():
            return
        task = asyncio.create_task(sites.discover_site(self.settings, self.store, self.checker.fetcher, site))
        self.in_flight.add(task)  # a stop lets it finish, as it does checks
        task.add_done_callback(self.in_flight.discard)
        try:
            found = await asyncio.shield(task)
        except asyncio.CancelledError:  # the daemon is stopping; it waits for the task itself
            return
        except Exception:  # a bug or a store failure costs this discovery, not the daemon
            log.exception("discovery of %s failed", name)
            return
        level = logging.WARNING if found.errors else logging.INFO if found.new else logging.DEBUG
        log.log(level, "%s", found.line())
        if found.new:
            self.posts_due.set()

    async def _check_post(self, post: Post, state) -> None:
        try:
            await self._after_check(post, await self.checker.check(post, state))
        finally:
            self._release(state.id)
            self.posts_in_flight.pop(state.id, None)
            self.posts_due.set()

    def dispatch_posts(self) -> int:
        """Start the checks of posts that are due, as far as there is room: at most `concurrency`
        x 2 in flight overall, and per site no more than the fetcher lets through to a host plus a
        small queue, so a slow or paused site never fills the room the others need."""
        room = self.settings.monitor.concurrency * 2 - len(self.posts_in_flight)
        if room <= 0 or not self.settings.sites:
            return 0
        per_site = self.settings.monitor.per_host + QUEUED_PER_HOST
        busy: dict[int, int] = {}
        for site_id in self.posts_in_flight.values():
            busy[site_id] = busy.get(site_id, 0) + 1
        names = self.store.site_names()
        now, started = utcnow(), 0
        for site_id in [i for i, n in names.items() if self.settings.site(n) is not None]:
            free = min(room - started, per_site - busy.get(site_id, 0))
            if free <= 0:
                continue
            due = self.store.post_states([site_id], due_before=now, limit=free, skip=list(self.posts_in_flight),
                                         free=True)
            held = self.store.claim_targets(state.id for state in due)
            for post, state in sites.posts(self.settings, [held[s.id] for s in due if s.id in held], names):
                self.posts_in_flight[state.id] = site_id
                task = asyncio.create_task(self._check_post(post, state))
                self.in_flight.add(task)
                task.add_done_callback(self.in_flight.discard)
                started += 1
        return started

    async def _dispatcher(self) -> None:
        while not self.stopping.is_set():
            self.posts_due.clear()
            try:
                self.dispatch_posts()
            except Exception:
                log.exception("could not read the posts that are due")
            try:
                await asyncio.wait_for(self.posts_due.wait(), DISPATCH_EVERY)
            except TimeoutError:
                pass
            if self.posts_due.is_set():
                await asyncio.sleep(0.05)  # let a burst of finished checks free their slots together

    def schedule(self, settings: Settings) -> None:
        """Make the scheduler's jobs match the targets and sites in settings."""
        wanted = {t.name: t for t in settings.targets}
        states = self.store.sync_targets(settings)
        for name in list(self.targets):
            if name not in wanted:
                self.scheduler.remove_job(name)
                del self.targets[name]
        changed = [t for n, t in wanted.items() if self.targets.get(n) != t
                   or self.settings.interval(t) != settings.interval(t)]
        self.settings = settings
        self.checker.settings = settings
        self.outbox.settings = settings
        self.store.router = Router(settings)
        runs = first_runs(changed, {n: s.next_due_at for n, s in states.items()}, settings.interval, utcnow())
        for target in changed:
            interval = settings.interval(target)
            trigger = IntervalTrigger(seconds=interval, start_date=runs[target.name], timezone=timezone.utc,
                                      jitter=interval * settings.monitor.jitter or None)
            self.scheduler.add_job(self.run_check, trigger, args=[target.name], id=target.name,
                                   name=target.name, replace_existing=True, max_instances=1, coalesce=True,
                                   misfire_grace_time=max(1, int(interval / 2)), next_run_time=runs[target.name])
            self.targets[target.name] = target
        self._schedule_sites(settings)
        log.info("watching %d targets and %d sites", len(self.targets), len(self.site_jobs))

    def _schedule_sites(self, settings: Settings) -> None:
        wanted = {s.name: s for s in settings.sites}
        for name in list(self.site_jobs):
            if name not in wanted:
                self.scheduler.remove_job("site:" + name)
                del self.site_jobs[name]
        rows = {r.name: r for r in self.store.site_rows()}
        now = utcnow()
        for name, site in wanted.items():
            if self.site_jobs.get(name) == site:
                continue
            row = rows.get(name)
            if self.site_jobs.get(name) is not None or row is None or row.next_discovery_at is None:
                first = now  # a new site, or its sources or filters changed: discover now
            else:
                first = max(now, row.next_discovery_at)
            trigger = IntervalTrigger(seconds=site.discover_interval, start_date=first, timezone=timezone.utc)
            self.scheduler.add_job(self.run_discovery, trigger, args=[name], id="site:" + name, name="site:" + name,
                                   replace_existing=True, max_instances=1, coalesce=True,
                                   misfire_grace_time=max(1, int(site.discover_interval / 2)), next_run_time=first)
            self.site_jobs[name] = site

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
        self.scheduler.start()
        async with self.outbox, self.store.holding_claims():
            watcher = asyncio.create_task(self._watch_config())
            # Alerts left pending by an earlier run (or a crash) go out first.
            delivery = asyncio.create_task(self.outbox.run(self.stopping))
            dispatcher = asyncio.create_task(self._dispatcher())
            log.info("daemon started (config %s)", self.settings.path)
            await self.stopping.wait()
            log.info("stopping: waiting for %d checks in flight", len(self.in_flight))
            self.scheduler.shutdown(wait=False)
            watcher.cancel()
            dispatcher.cancel()
            if self.in_flight:
                await asyncio.gather(*self.in_flight, return_exceptions=True)
            self.outbox.wake.set()
            await delivery
        self.store.checkpoint()
        log.info("stopped")
