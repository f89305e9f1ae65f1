"""One check of one target: fetch -> extract -> compare with the last good version -> store.

The Checker is handed its store and fetcher (it builds neither), so the same pipeline serves the
one-shot `monitor check`, the daemon and the tests.
"""
from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import random
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from . import detect, pace, volatile
from .config import Post, Settings, Target
from .discover import DiscoveryError, canonical, canonical_link
from .extract import ExtractError, Extracted, extract, parse_text, settings_key
from .fetch import Fetcher, FetchResult, decode
from .models import utcnow
from .results import SKIPPED, CheckResult
from .snapshots import SnapshotError
from .storage import STORAGE_ERRORS, storage_error
from .store import Attempt, Capture, ClaimLost, Due, Failure, Store, TargetState

log = logging.getLogger("monitor.check")

MISSING_STATUSES = (404, 410)
QUEUED_PER_HOST = 2  # checks of one host waiting at its gate beyond its per-host limit
WRITERS = 1  # threads storing new versions (measured: a second one adds RSS, not speed)


class Checker:
    def __init__(self, settings: Settings, store: Store, fetcher: Fetcher):
        self.settings = settings
        self.store = store
        self.fetcher = fetcher
        # Storing a capture waits for the disk (each file is fsync'd before the rows naming it
        # commit): done in this thread while the event loop fetches and parses the next pages.
        self._writer = ThreadPoolExecutor(WRITERS, thread_name_prefix="monitor-store")

    def next_due(self, target: Target, state: TargetState, at: datetime, outcome: str) -> Due:
        """When to check again after this check's outcome (unchanged | changed | error).

        A configured target keeps its interval. A site's post paces itself (monitor/pace.py): the
        interval grows while it stays quiet and snaps back to min_interval after a change; its
        first check spreads the next one over the whole interval, so posts discovered together are
        not checked together ever after; so does a check that ran late (after an outage)."""
        if not isinstance(target, Post):
            interval = self.settings.interval(target)
            spread = random.uniform(1 - self.settings.monitor.jitter, 1 + self.settings.monitor.jitter)
            return Due(at + timedelta(seconds=interval * spread), interval)
        streak = {"unchanged": state.unchanged_streak + 1, "changed": 0}.get(outcome, state.unchanged_streak)
        first = state.last_version_id is None and outcome == "changed"
        late = state.next_due_at is not None and (at - state.next_due_at).total_seconds() > target.min_interval
        quiet_since = at if outcome == "changed" and not first else state.last_change_at
        born = target.published or (None if state.baseline else state.created_at)
        if born is not None and (quiet_since is None or born > quiet_since):
            quiet_since = born
        interval = pace.interval(target.min_interval, target.max_interval, quiet_since, at, streak)
        # A post checked late (after an outage, or behind a long queue) is re-spread too.
        spread = random.uniform(0.0, 1.0) if first or late else random.uniform(1 - self.settings.monitor.jitter,
                                                                                 1 + self.settings.monitor.jitter)
        return Due(at + timedelta(seconds=max(target.min_interval / 2, interval * spread)), interval, streak)

    async def check_many(self, targets: list[Target], states: dict[str, TargetState]) -> list[CheckResult]:
        """Check targets concurrently; then calibrate the ones seen for the first time.

        Each host gets a few workers (its per-host limit plus QUEUED_PER_HOST) taking its targets
        in turn, and at most `concurrency` x 2 checks are under way at once: a slow or paused host
        holds only its own few places, and memory stays bounded however many targets there are
        (a check waiting for its host's gate already holds its request state)."""
        started = time.monotonic()
        results: list[CheckResult | None] = [None] * len(targets)
        queues: dict[str, deque[int]] = {}
        for i, target in enumerate(targets):
            queues.setdefault(urlsplit(target.url).netloc.lower(), deque()).append(i)
        room = asyncio.Semaphore(self.settings.monitor.concurrency * 2)

        async def worker(queue: deque[int]) -> None:
            while queue:
                i = queue.popleft()
                async with room:
                    results[i] = await self.check(targets[i], states[targets[i].name])

        per_host = self.settings.monitor.per_host + QUEUED_PER_HOST
        await asyncio.gather(*(worker(q) for q in queues.values() for _ in range(min(per_host, len(q)))))
        self._save_batched(results)
        new = [t for t, r in zip(targets, results) if r.outcome == "first" and self.calibrates(t)]
        if new:
            await asyncio.sleep(max(0.0, self.settings.monitor.calibrate_delay - (time.monotonic() - started)))
            await self._calibrate_all(new, states)
        return results

    def _storage_error(self, exc: BaseException) -> str:
        return storage_error(self.store.url, exc, self.store.snapshots.root)

    def _save_batched(self, results: list[CheckResult]) -> None:
        """Write the unchanged checks the store holds back for one batch (see Store.batch). When
        the database refuses them, each unchanged result says it may not have been saved."""
        try:
            self.store.flush()
        except STORAGE_ERRORS as exc:
            problem = self._storage_error(exc)
            log.error("could not save the unchanged checks of this pass: %s", problem)
            for result in results:
                if result.outcome == "unchanged":
                    result.unsaved = problem

    async def _calibrate_all(self, targets: list[Target], states: dict[str, TargetState]) -> None:
        room = asyncio.Semaphore(self.settings.monitor.concurrency * 2)

        async def one(target: Target) -> None:
            async with room:
                await self.calibrate(target, states[target.name])

        await asyncio.gather(*(one(t) for t in targets))

    async def check(self, target: Target, state: TargetState) -> CheckResult:
        """Never raises for a bad page or a failing store: the problem becomes the check's error."""
        at = utcnow()
        started = time.perf_counter()
        fetched = None
        try:
            fetched = await self._fetch(target, state, etag=state.etag if state.last_version_id else None,
                                        last_modified=state.last_modified if state.last_version_id else None,
                                        robots=target.robots)
            return await self._handle(target, state, fetched, at, started)
        except ClaimLost as exc:  # another process took the target over: its check counts, not this one
            log.warning("%s", exc)
            return CheckResult(target.name, SKIPPED, _ms(started), summary="being checked by another process")
        except Exception as exc:
            if fetched is not None and isinstance(exc, STORAGE_ERRORS):  # a full or read-only disk, a database gone
                unsaved = self._storage_error(exc)
                log.error("%s: could not save this check: %s", target.name, unsaved)
                error = f"could not save this check: {unsaved}"
            else:  # a bug must cost one check, not the daemon
                log.exception("check of %s failed", target.name)
                unsaved, error = None, f"internal error: {type(exc).__name__}: {exc}"
        try:
            self.store.record_failure(state, attempt=Attempt(at, _ms(started)),
                                      failure=Failure(error, gone_after=self.settings.monitor.gone_after),
                                      due=self.next_due(target, state, at, "error"))
        except STORAGE_ERRORS as exc:
            log.error("%s: could not record the failed check either: %s", target.name, self._storage_error(exc))
        except Exception:
            log.exception("could not record the failed check of %s", target.name)
        return CheckResult(target.name, "error", _ms(started), error=error, unsaved=unsaved)

    def _extract(self, target: Target, html: str, url: str | None, rules: list[dict]) -> Extracted:
        return extract(html, target.selector, target.ignore, target.ignore_text, url=url, rules=rules)

    def _rules(self, target: Target, state: TargetState) -> list[dict]:
        return list(state.rules or []) if target.learn else []

    async def _handle(self, target: Target, state: TargetState, fetched: FetchResult, at: datetime,
                      started: float) -> CheckResult:
        status = fetched.status
        if fetched.deferred_until is not None:
            # The host asked us to wait (429/503 Retry-After): not the page's failure; try later.
            self.store.defer(state, fetched.deferred_until)
            return CheckResult(target.name, "deferred", _ms(started), summary=fetched.error or "")
        error, missing = fetched.error, status in MISSING_STATUSES
        if error is None and status is not None and status >= 400:
            error = f"HTTP {status}"
        if error is None and fetched.not_modified:
            return self._unchanged(target, state, fetched, at, started, raw_sha=None)
        extracted = previous = None
        raw_sha = key = ""
        if error is None and isinstance(target, Post):
            kept = self._settle_url(state, fetched)
            if kept is not None:
                return CheckResult(target.name, "merged", _ms(started), status,
                                   summary=f"the same post as {kept.name} ({fetched.final_url}); watched there")
        if error is None:
            raw_sha = hashlib.sha256(fetched.body).hexdigest()
            if raw_sha == state.last_raw_sha:
                return self._unchanged(target, state, fetched, at, started, raw_sha=None)
            try:
                rules = self._rules(target, state)
                key = settings_key(target.selector, target.ignore, target.ignore_text, rules)
                extracted = self._extract(target, fetched.text, fetched.final_url, rules)
            except ExtractError as exc:
                error = str(exc)
            except Exception as exc:  # the parser choking on hostile markup
                error = f"could not parse the page: {type(exc).__name__}: {exc}"
            else:
                previous = self.store.version(state.last_version_id) if state.last_version_id else None
                page_error = (("page has no text content (an empty page or an error page)", True)
                              if not extracted.blocks else
                              detect.error_page(extracted.title, extracted.blocks, previous and previous.words))
                if page_error:
                    error, missing = page_error
                else:
                    key = self._pin_scope(target, state, extracted, key)
        if error is not None:
            gone = (f"post deleted: HTTP {status} on {self.settings.monitor.gone_after} checks in a row; "
                    "its last text is kept") if isinstance(target, Post) else None
            events = self.store.record_failure(
                state, attempt=Attempt(at, _ms(started), status), due=self.next_due(target, state, at, "error"),
                failure=Failure(error, gone_after=self.settings.monitor.gone_after, missing=missing, gone_summary=gone))
            return CheckResult(target.name, "missing" if missing else "error", _ms(started), status,
                               error=error, events=events)
        return await self._compare(target, state, previous, fetched, extracted, raw_sha, key, at, started)

    async def _fetch(self, target: Target, state: TargetState | None = None, **kwargs) -> FetchResult:
        """GET the target's page with its headers and its address policy (its configured origins);
        with fetcher = "browser", render it (monitor/browser.py), with a screenshot when its text
        is new to the target's `state` (none without one)."""
        from .browser import fetch_of

        shoot = functools.partial(self._new_text, target, state) if target.screenshots and state else False
        return await fetch_of(self.fetcher, target, shoot)(
            target.url, headers=target.headers, origins=target.origins,
            allow_private=self.settings.monitor.address_policy(target).allow_private, **kwargs)

    def _new_text(self, target: Target, state: TargetState, html: str, url: str) -> bool:
        """Whether a rendered page's text differs from the target's last version's: only then is
        its screenshot taken (it costs more than the rendering)."""
        if state.last_version_id is None:
            return True
        try:
            text = self._extract(target, html, url, self._rules(target, state)).text()
            previous = self.store.version(state.last_version_id)
        except Exception:  # the check will say what is wrong with the page
            return True
        return hashlib.sha256(text.encode("utf-8")).hexdigest() != previous.text_sha

    def _pin_scope(self, target: Target, state: TargetState, extracted: Extracted, key: str) -> str:
        """Keep the container this capture was read from (a "scope" rule, see extract.pin_rule), so
        later checks watch the same one; returns the settings key with the pin in it."""
        rules = list(state.rules or [])
        if not target.learn or extracted.pin is None or extracted.pin in rules:
            return key
        rules = [r for r in rules if r.get("action") != "scope"] + [extracted.pin]
        self.store.set_rules(state, rules, dict(state.path_strikes or {}))
        return settings_key(target.selector, target.ignore, target.ignore_text, rules)

    def _settle_url(self, state: TargetState, fetched: FetchResult) -> TargetState | None:
        """A post's one URL: where it redirected to, or the <link rel=canonical> it names (on the
        same host, and not the site's home page, which some sites name on every page). Returns
        the target that watches this post when that is another one."""
        url = canonical_link(fetched.text, fetched.final_url) if fetched.text and fetched.final_url else None
        if url is None:
            try:
                url = canonical(fetched.final_url or state.url)
            except DiscoveryError:
                return None
        if url == state.url:
            return None
        return self.store.move_url(state, url)

    def calibrates(self, target: Target) -> bool:
        return target.learn and (self.settings.monitor.calibrate if target.calibrate is None else target.calibrate)

    async def calibrate(self, target: Target, state: TargetState) -> int:
        """Fetch a newly added target once more, a moment after its first version: blocks that
        differ between the two are volatile. Returns the number of rules learned. The next
        check re-reads the first version with them (a silent 'rebaselined' version).

        The second fetch is conditional (the first one's ETag and Last-Modified): a server that
        answers 304 vouches that nothing changed, so a static page costs a 304, not a second
        download and two more extractions."""
        if state.last_version_id is None:
            return 0
        fetched = await self._fetch(target, etag=state.etag, last_modified=state.last_modified)
        if not fetched.ok or fetched.not_modified or hashlib.sha256(fetched.body).hexdigest() == state.last_raw_sha:
            return 0
        first = self.store.version(state.last_version_id)
        try:
            old_html = decode(self.store.snapshots.get(first.raw_sha), (first.headers or {}).get("content-type"))[0]
            rules = volatile.calibrate(self._extract(target, old_html, first.final_url, []),
                                       self._extract(target, fetched.text, fetched.final_url, []))
        except Exception:  # calibration is an optimisation: a page it cannot read is checked as usual
            log.exception("calibrating %s failed", target.name)
            return 0
        if rules:
            log.info("%s: learned %d volatile blocks from a second fetch", target.name, len(rules))
            try:
                self.store.set_rules(state, list(state.rules or []) + rules, dict(state.path_strikes or {}))
            except STORAGE_ERRORS as exc:
                log.error("%s: could not save the learned blocks: %s", target.name, self._storage_error(exc))
                return 0
        return len(rules)

    def _unchanged(self, target, state, fetched, at, started, raw_sha) -> CheckResult:
        was_failing = state.status in ("error", "gone")
        self.store.record_unchanged(state, attempt=Attempt(at, _ms(started), fetched.status),
                                    due=self.next_due(target, state, at, "unchanged"), etag=_header(fetched, "etag"),
                                    last_modified=_header(fetched, "last-modified"), raw_sha=raw_sha,
                                    recovered_event="check succeeded again, text unchanged" if was_failing else None)
        return CheckResult(state.name, "unchanged", _ms(started), fetched.status,
                           events=["recovered"] if was_failing else [])

    async def _compare(self, target: Target, state: TargetState, previous, fetched: FetchResult, extracted: Extracted,
                 raw_sha: str, key: str, at: datetime, started: float) -> CheckResult:
        text = extracted.text()
        text_sha = hashlib.sha256(text.encode("utf-8")).hexdigest()
        if previous is not None and previous.text_sha == text_sha:
            return self._unchanged(target, state, fetched, at, started, raw_sha=raw_sha)
        word_count = extracted.word_count
        verdict = detect.first_version(word_count)
        if previous is not None:
            try:
                old = self._previous_text(target, state, previous, key)
            except (SnapshotError, OSError) as exc:
                # Its capture is missing or damaged: nothing to compare with. Recording goes on,
                # from this capture as the new baseline, and says so.
                log.warning("%s: previous capture v%d unreadable (%s); re-captured", target.name, previous.seq, exc)
                verdict = detect.previous_lost(previous.seq, exc)
            except ExtractError as exc:
                verdict = detect.previous_unfit(previous.seq, exc)
            else:
                if target.learn and old.lines != extracted.lines:
                    learned, strikes = volatile.learn(old.blocks, extracted, state.path_strikes or {})
                    if learned or strikes != (state.path_strikes or {}):
                        self.store.set_rules(state, list(state.rules or []) + learned, strikes)
                restored = self.store.earliest_with_text(state.id, text_sha, exclude_id=previous.id)
                verdict = detect.compare(old.lines, extracted.lines, restored, note=extracted.repinned)
        elif isinstance(target, Post) and not state.baseline:
            # A post that appeared after the site's first discovery: its first version is the news.
            verdict = detect.new_post(word_count, extracted.title or target.url)
        capture = Capture(raw=fetched.body, raw_sha=raw_sha, text=text, text_sha=text_sha, title=extracted.title,
                          words=word_count, blocks=len(extracted.blocks), extract_key=key,
                          http_status=fetched.status, final_url=fetched.final_url, headers=fetched.headers,
                          etag=_header(fetched, "etag"), last_modified=_header(fetched, "last-modified"),
                          screenshot=fetched.screenshot, response=fetched.response)
        record = functools.partial(self.store.record_version, state, capture=capture, verdict=verdict,
                                   attempt=Attempt(at, _ms(started), fetched.status),
                                   due=self.next_due(target, state, at, "changed"))
        loop = asyncio.get_running_loop()
        try:
            seq = await loop.run_in_executor(self._writer, functools.partial(
                record, previous_raw_sha=previous.raw_sha if previous else None))
        except SnapshotError as exc:  # the previous capture, the new one's delta base, is damaged
            log.warning("%s: previous capture v%d damaged (%s); this one is stored whole", target.name,
                        previous.seq, exc)
            seq = await loop.run_in_executor(self._writer, record)
        touched = detect.keyword_hits(target.keywords, verdict.passages) if verdict.kind != "first" else []
        return CheckResult(target.name, verdict.outcome, _ms(started), fetched.status, kind=verdict.kind,
                           summary=verdict.summary, version=seq, events=[verdict.event_kind] if verdict.alert else [],
                           keywords=touched)

    def _previous_text(self, target: Target, state: TargetState, previous, key: str) -> Extracted:
        """The text of the previous version, as the current settings read it."""
        if previous.extract_key == key:
            return parse_text(self.store.snapshots.get_text(previous.text_sha))
        # Extraction settings, learned rules or the extractor changed since: read the previous
        # capture again the current way, so only the page's own edits count.
        old_html = decode(self.store.snapshots.get(previous.raw_sha), (previous.headers or {}).get("content-type"))[0]
        return self._extract(target, old_html, previous.final_url, self._rules(target, state))


def _header(fetched: FetchResult, name: str) -> str | None:
    return fetched.headers.get(name)


def _ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)
