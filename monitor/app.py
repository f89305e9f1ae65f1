"""Wiring: build the store, fetcher and checker from settings, for the CLI and the daemon."""
from __future__ import annotations

import asyncio
import dataclasses
import gc
import json
import logging
import os
from collections import Counter
from typing import TYPE_CHECKING

from . import lease, loop
from .config import ConfigError, Post, Settings
from .results import SKIPPED, CheckResult
from .storage import STORAGE_ERRORS, storage_error

if TYPE_CHECKING:  # imported where used: a command loads only what it needs (see bench/startup.py)
    from .store import Store


def freeze_heap() -> None:
    """Move everything allocated so far (modules, config, models) out of the garbage collector's
    reach: a pass allocates many short-lived objects per request, and every full collection would
    otherwise walk the whole import heap again. Measured: a 1000-page unchanged pass 1.8 s -> 1.2 s."""
    gc.collect()
    gc.freeze()


def fetcher_for(settings: Settings, store: Store):
    """A fetcher whose per-host limits and pauses hold for every worker sharing the database."""
    from .fetch import Fetcher
    from .fleet import shared_hosts

    return Fetcher(settings.monitor, hosts=shared_hosts(store, settings.monitor))


def open_store(settings: Settings) -> Store:
    from .alerts.routing import Router
    from .blobs import open_snapshots
    from .store import Store

    store = Store.open(settings.database_url, None, router=Router(settings), lease_s=lease.length(settings.monitor))
    store.snapshots = open_snapshots(settings, store.engine)  # a folder, the database, or a bucket
    return store


async def check_pass(settings: Settings, store: Store, names: list[str] | None = None) -> list[CheckResult]:
    """Check every configured target and every discovered post (or the named ones) once. Posts
    already watched go first: a new URL found by discovery may turn out, when an old post is
    checked, to be where that post moved (then it is folded into it rather than reported new).
    Targets another process is checking are skipped (their results say so); the others are
    claimed for the pass and released at its end."""
    from .sync import sync_targets

    wanted = set(names or ())
    states = sync_targets(settings, store)
    jobs = [(t, states[t.name]) for t in settings.targets if not names or t.name in wanted]
    if settings.sites:
        from . import sites

        posts = sites.posts(settings, store.post_states(), store.site_names())
        jobs += [(post, state) for post, state in posts if not names or post.name in wanted]
    held = store.claim_targets(state.id for _, state in jobs)
    try:
        async with store.holding_claims():
            results = await _check_claimed(settings, store, [(t, held[st.id]) for t, st in jobs if st.id in held])
    finally:
        try:
            store.release_targets(held)
        except STORAGE_ERRORS as exc:  # a full disk: the claims lapse with their lease; the results stand
            logging.getLogger("monitor.check").error("could not release this pass's claims: %s",
                                                     storage_error(store.url, exc))
    return results + [CheckResult(t.name, SKIPPED, summary="being checked by another process")
                      for t, st in jobs if st.id not in held]


async def _check_claimed(settings: Settings, store: Store, jobs: list) -> list[CheckResult]:
    if not jobs:
        return []
    from .check import Checker

    freeze_heap()
    results: list[CheckResult] = []
    with store.batch():
        async with fetcher_for(settings, store) as fetcher:
            checker = Checker(settings, store, fetcher)
            known = [j for j in jobs if j[1].last_version_id is not None]
            fresh = [j for j in jobs if j[1].last_version_id is None]
            if known:
                results += await checker.check_many([t for t, _ in known], {t.name: st for t, st in known})
            if known and any(isinstance(t, Post) for t, _ in fresh):
                # Some of the new URLs may have been folded into a known post meanwhile.
                active = {st.id for st in store.post_states()}
                fresh = [(t, st) for t, st in fresh if not isinstance(t, Post) or st.id in active]
            if fresh:
                results += await checker.check_many([t for t, _ in fresh], {t.name: st for t, st in fresh})
    return results


async def discover_due(settings: Settings, store: Store, every: bool = False) -> list:
    """Run the discovery of every site that is due (or of every site), each claimed for the time
    it takes; a site another process is discovering is left to it (its result says so)."""
    if not settings.sites:
        return []
    from . import sites
    from .models import utcnow
    from .sync import sync_targets

    sync_targets(settings, store)
    now = utcnow()
    due = settings.sites if every else sites.due_sites(settings, store, now)
    held = {r.name: r.id for r in store.claim_sites(now, [s.name for s in due], due_only=False)}
    try:
        async with store.holding_claims(), fetcher_for(settings, store) as fetcher:
            return [await sites.discover_site(settings, store, fetcher, site) if site.name in held
                    else sites.Discovery(site.name, busy=True) for site in due]
    finally:
        for site_id in held.values():
            store.release_site(site_id)


MIN_TARGETS_PER_WORKER = 100  # below this a second process costs more than it saves


def worker_count(settings: Settings, targets: int) -> int:
    if not hasattr(os, "fork"):
        return 1
    if settings.monitor.workers:
        return max(1, min(settings.monitor.workers, targets))
    return max(1, min(os.cpu_count() or 1, 4, targets // MIN_TARGETS_PER_WORKER))


def due_names(settings: Settings, store: Store) -> list[str]:
    """The targets and posts whose next check is due (or that were never checked): what a cron
    job running `monitor check --due` every few minutes checks, so posts keep their own pace."""
    from .models import utcnow
    from .sync import sync_targets

    now = utcnow()
    states = sync_targets(settings, store)
    due = [n for n, st in states.items() if st.next_due_at is None or st.next_due_at <= now]
    if settings.sites:
        due += [st.name for st in store.post_states(due_before=now)]
    return due


def run_pass(settings: Settings, store: Store, names: list[str] | None = None) -> list[CheckResult]:
    """One pass over the targets, shared by worker processes when there are many: a pass is
    CPU-bound (parsing, diffing, HTTP in Python), so each core takes a share of the targets.
    Hosts stay polite: the per-host and global limits are divided among the processes. Each
    process writes its own checks; only this one delivers alerts, afterwards."""
    from .sync import sync_targets

    configured = [t.name for t in settings.targets]
    posts = [st.name for st in store.post_states()] if settings.sites else []
    unknown = sorted(set(names or ()) - set(configured) - set(posts))
    if unknown:
        raise ConfigError(f"{settings.path}: no target named {', '.join(map(repr, unknown))}")
    chosen = [n for n in configured + posts if not names or n in names]
    if not chosen:
        sync_targets(settings, store)  # targets no longer configured go inactive
        return []
    from . import check, fetch  # noqa: F401  (the pipeline, loaded once here rather than in each worker)
    workers = worker_count(settings, len(chosen))
    if workers == 1:
        return loop.run(check_pass(settings, store, names))
    sync_targets(settings, store)
    store.engine.dispose()  # no database connection may cross the fork
    share = _share(settings, workers)
    chunks = [chosen[i::workers] for i in range(workers)]
    freeze_heap()
    children = [_fork_worker(share, chunk) for chunk in chunks[1:]]
    results = loop.run(check_pass(share, store, chunks[0]))
    for pid, pipe, chunk in children:
        with os.fdopen(pipe, "rb") as handle:
            data = handle.read()
        _, status = os.waitpid(pid, 0)
        if status == 0 and data:
            results += [CheckResult(**r) for r in json.loads(data)]
        else:
            results += [CheckResult(name, "error", error="worker process failed; see its log") for name in chunk]
    return results


def _share(settings: Settings, workers: int) -> Settings:
    # Each process has its own host gates: the per-host limit is divided, the least delay between
    # two requests to a host multiplied, so a host sees no more than one process would send.
    monitor = settings.monitor.model_copy(update={
        "per_host": max(1, settings.monitor.per_host // workers),
        "host_delay": settings.monitor.host_delay * workers,
        "concurrency": max(1, settings.monitor.concurrency // workers)})
    return Settings(settings.config.model_copy(update={"monitor": monitor}), settings.path)


def _fork_worker(settings: Settings, names: list[str]) -> tuple[int, int, list[str]]:
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid:
        os.close(write_end)
        return pid, read_end, names
    os.close(read_end)  # the child: check its share, report, and leave without cleanup handlers
    code = 1
    try:
        store = open_store(settings)
        results = loop.run(check_pass(settings, store, names))
        store.close()
        with os.fdopen(write_end, "wb") as handle:
            handle.write(json.dumps([dataclasses.asdict(r) for r in results]).encode())
        code = 0
    except BaseException:
        logging.getLogger("monitor.check").exception("worker process failed")
    finally:
        os._exit(code)


async def deliver_alerts(settings: Settings, store: Store, wait: float = 0.0, everything: bool = False) -> Counter:
    """Send due alerts from the outbox (`everything`: all pending and failed, now), then keep
    retrying for up to `wait` seconds while retries fall due."""
    from .alerts.outbox import Outbox

    async with Outbox(store, settings) as outbox, store.holding_claims():
        return await outbox.drain(wait, everything)


def run_daemon(settings: Settings, store: Store, web=None) -> None:
    """The daemon until SIGTERM/SIGINT; with `web` (a web.server.WebServer), the web UI in the
    same event loop, stopped with it."""
    from .scheduler import Daemon

    async def main() -> None:
        freeze_heap()
        async with fetcher_for(settings, store) as fetcher:
            daemon = Daemon(settings, store, fetcher)
            if web is None:
                await daemon.run()
            else:
                await web.alongside(daemon.run(), daemon.stopping)

    asyncio.run(main())


async def explain_page(settings: Settings, target, url: str | None, rules: list[dict]) -> dict:
    """Fetch a page (a target, or any URL with zero configuration) and report every block with
    why it is watched or ignored."""
    from .browser import fetch_of
    from .extract import extract
    from .fetch import Fetcher

    async with Fetcher(settings.monitor) as fetcher:  # a target with fetcher = "browser": rendered
        fetched = await fetch_of(fetcher, target)(target.url if target else url,
                                                  headers=target.headers if target else None,
                                                  origins=target.origins if target else None,
                                                  allow_private=settings.monitor.address_policy(target).allow_private)
    if not fetched.ok or fetched.not_modified:
        raise ConfigError(f"could not fetch {fetched.url}: {fetched.error or f'HTTP {fetched.status}'}")
    page = extract(fetched.text, target.selector if target else None, target.ignore if target else (),
                   target.ignore_text if target else (), url=fetched.final_url, rules=rules, explain=True)
    return {"url": fetched.final_url, "scope": page.scope, "title": page.title, "rules": rules,
            "blocks": [{"text": b.text, "path": b.path, "reason": b.reason} for b in page.explained]}
