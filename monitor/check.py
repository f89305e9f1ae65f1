"""One check of one target: fetch -> extract -> compare with the last good version -> store.

The Checker is handed its store and fetcher (it builds neither), so the same pipeline serves the
one-shot `monitor check`, the daemon and the tests.
"""
from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from . import detect, volatile
from .config import Settings, Target
from .diff import diff_blocks
from .extract import ExtractError, Extracted, extract, fold, parse_text, settings_key
from .fetch import Fetcher, FetchResult, decode
from .models import utcnow
from .store import Capture, Store, TargetState

log = logging.getLogger("monitor.check")

MISSING_STATUSES = (404, 410)


@dataclass
class CheckResult:
    name: str
    outcome: str  # first | changed | unchanged | error | missing
    duration_ms: int = 0
    http_status: int | None = None
    kind: str | None = None
    summary: str = ""
    error: str | None = None
    version: int | None = None
    events: list[str] = field(default_factory=list)

    def line(self) -> str:
        if self.outcome in ("error", "missing"):
            return f"{self.name}: ERROR {self.error}"
        if self.outcome == "unchanged":
            return f"{self.name}: unchanged"
        return f"{self.name}: v{self.version} {self.kind}: {self.summary}"


class Checker:
    def __init__(self, settings: Settings, store: Store, fetcher: Fetcher):
        self.settings = settings
        self.store = store
        self.fetcher = fetcher

    def next_due(self, target: Target, at: datetime) -> datetime:
        return at + timedelta(seconds=self.settings.interval(target))

    async def check_many(self, targets: list[Target], states: dict[str, TargetState]) -> list[CheckResult]:
        """Check targets concurrently; then calibrate the ones seen for the first time."""
        limit = asyncio.Semaphore(self.settings.monitor.concurrency)
        started = time.monotonic()

        async def one(target: Target) -> CheckResult:
            async with limit:
                return await self.check(target, states[target.name])

        async def calibrate(target: Target) -> int:
            async with limit:
                return await self.calibrate(target, states[target.name])

        results = await asyncio.gather(*(one(t) for t in targets))
        new = [t for t, r in zip(targets, results) if r.outcome == "first" and self.calibrates(t)]
        if new:
            await asyncio.sleep(max(0.0, self.settings.monitor.calibrate_delay - (time.monotonic() - started)))
            await asyncio.gather(*(calibrate(t) for t in new))
        return results

    async def check(self, target: Target, state: TargetState) -> CheckResult:
        """Never raises for a bad page or a failing store: the problem becomes the check's error."""
        at = utcnow()
        started = time.perf_counter()
        try:
            fetched = await self.fetcher.fetch(
                target.url,
                etag=state.etag if state.last_version_id else None,
                last_modified=state.last_modified if state.last_version_id else None,
                headers=target.headers,
            )
            return await self._handle(target, state, fetched, at, started)
        except Exception as exc:  # a bug or a store failure must cost one check, not the daemon
            log.exception("check of %s failed", target.name)
            error = f"internal error: {type(exc).__name__}: {exc}"
            try:
                self.store.record_failure(state, at, _ms(started), None, error, False,
                                          self.settings.monitor.gone_after, self.next_due(target, at))
            except Exception:
                log.exception("could not record the failed check of %s", target.name)
            return CheckResult(target.name, "error", _ms(started), error=error)

    def _extract(self, target: Target, html: str, url: str | None, rules: list[dict]) -> Extracted:
        return extract(html, target.selector, target.ignore, target.ignore_text, url=url, rules=rules)

    def _rules(self, target: Target, state: TargetState) -> list[dict]:
        return list(state.rules or []) if target.learn else []

    async def _handle(self, target: Target, state: TargetState, fetched: FetchResult, at: datetime,
                      started: float) -> CheckResult:
        status = fetched.status
        due = self.next_due(target, at)
        error, missing = fetched.error, status in MISSING_STATUSES
        if error is None and status is not None and status >= 400:
            error = f"HTTP {status}"
        if error is None and fetched.not_modified:
            return self._unchanged(state, fetched, at, started, due, raw_sha=None)
        extracted = previous = None
        raw_sha = key = ""
        if error is None:
            raw_sha = hashlib.sha256(fetched.body).hexdigest()
            if raw_sha == state.last_raw_sha:
                return self._unchanged(state, fetched, at, started, due, raw_sha=None)
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
        if error is not None:
            events = self.store.record_failure(state, at, _ms(started), status, error, missing,
                                               self.settings.monitor.gone_after, due)
            return CheckResult(target.name, "missing" if missing else "error", _ms(started), status,
                               error=error, events=events)
        return self._compare(target, state, previous, fetched, extracted, raw_sha, key, at, started, due)

    def calibrates(self, target: Target) -> bool:
        return target.learn and (self.settings.monitor.calibrate if target.calibrate is None else target.calibrate)

    async def calibrate(self, target: Target, state: TargetState) -> int:
        """Fetch a newly added target once more, a moment after its first version: blocks that
        differ between the two are volatile. Returns the number of rules learned. The next
        check re-reads the first version with them (a silent 'rebaselined' version)."""
        if state.last_version_id is None:
            return 0
        first = self.store.version(state.last_version_id)
        fetched = await self.fetcher.fetch(target.url, headers=target.headers)
        if not fetched.ok or fetched.not_modified or hashlib.sha256(fetched.body).hexdigest() == first.raw_sha:
            return 0
        try:
            old_html = decode(self.store.snapshots.get(first.raw_sha), (first.headers or {}).get("content-type"))[0]
            rules = volatile.calibrate(self._extract(target, old_html, first.final_url, []),
                                       self._extract(target, fetched.text, fetched.final_url, []))
        except Exception:  # calibration is an optimisation: a page it cannot read is checked as usual
            log.exception("calibrating %s failed", target.name)
            return 0
        if rules:
            log.info("%s: learned %d volatile blocks from a second fetch", target.name, len(rules))
            self.store.set_rules(state, list(state.rules or []) + rules, dict(state.path_strikes or {}))
        return len(rules)

    def _unchanged(self, state, fetched, at, started, due, raw_sha) -> CheckResult:
        was_failing = state.status in ("error", "gone")
        self.store.record_unchanged(state, at, _ms(started), fetched.status, _header(fetched, "etag"),
                                    _header(fetched, "last-modified"), raw_sha, due,
                                    recovered_event="check succeeded again, text unchanged" if was_failing else None)
        return CheckResult(state.name, "unchanged", _ms(started), fetched.status,
                           events=["recovered"] if was_failing else [])

    def _compare(self, target: Target, state: TargetState, previous, fetched: FetchResult, extracted: Extracted,
                 raw_sha: str, key: str, at: datetime, started: float, due: datetime) -> CheckResult:
        text = extracted.text()
        text_sha = hashlib.sha256(text.encode("utf-8")).hexdigest()
        change = detect.first_version(extracted.word_count)
        if previous is not None:
            if previous.text_sha == text_sha:
                return self._unchanged(state, fetched, at, started, due, raw_sha=raw_sha)
            if previous.extract_key != key:
                # Extraction settings, learned rules or the extractor changed since: read the
                # previous capture again the current way, so only the page's own edits count.
                old_html = decode(self.store.snapshots.get(previous.raw_sha),
                                  (previous.headers or {}).get("content-type"))[0]
                old = self._extract(target, old_html, previous.final_url, self._rules(target, state))
            else:
                old = parse_text(self.store.snapshots.get_text(previous.text_sha))
            if target.learn and old.lines != extracted.lines:
                learned, strikes = volatile.learn(old.blocks, extracted, state.path_strikes or {})
                if learned or strikes != (state.path_strikes or {}):
                    self.store.set_rules(state, list(state.rules or []) + learned, strikes)
            change = self._classify(state, previous, old, extracted, text_sha)
        capture = Capture(raw=fetched.body, raw_sha=raw_sha, text=text, text_sha=text_sha, title=extracted.title,
                          words=extracted.word_count, blocks=len(extracted.blocks), extract_key=key,
                          http_status=fetched.status, final_url=fetched.final_url, headers=fetched.headers,
                          etag=_header(fetched, "etag"), last_modified=_header(fetched, "last-modified"))
        seq = self.store.record_version(state, capture, at, _ms(started), change, due,
                                        previous_raw_sha=previous.raw_sha if previous else None)
        return CheckResult(target.name, "first" if change["kind"] == "first" else "changed", _ms(started),
                           fetched.status, kind=change["kind"], summary=change["summary"], version=seq,
                           events=[change["kind"]] if change["alert"] else [])

    def _classify(self, state: TargetState, previous, old: Extracted, new: Extracted, text_sha: str) -> dict | None:
        if old.lines == new.lines:
            # Same text under new extraction settings: a new baseline, not an edit.
            return {"kind": "rebaselined", "summary": "extraction settings changed; text the same", "score": 0.0,
                    "stats": {}, "passages": [], "alert": False}
        earlier = self.store.earliest_with_text(state.id, text_sha, exclude_id=previous.id)
        restored = detect.Earlier(earlier.id, earlier.seq, earlier.first_seen) if earlier else None
        result = diff_blocks(old.lines, new.lines)
        verdict = detect.classify(result, restored)
        stats = dict(result["stats"], fallback=result["fallback"])
        if not restored and len(verdict.passages) < detect.MAX_PASSAGES and all(
                fold(p["removed"]) == fold(p["added"]) for p in verdict.passages):
            return {"kind": "formatting", "summary": "typography only (quotes, dashes, ellipses): no words changed",
                    "score": 0.0, "stats": stats, "passages": verdict.passages, "alert": True}
        return {"kind": verdict.kind, "summary": verdict.summary, "score": verdict.score, "stats": stats,
                "passages": verdict.passages, "restored_version_id": earlier.id if earlier else None,
                "same_as_id": earlier.id if earlier else None, "alert": True}


def _header(fetched: FetchResult, name: str) -> str | None:
    return fetched.headers.get(name)


def _ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)
