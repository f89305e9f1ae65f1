"""The store's part that records checks: a new version with its change, event and alerts in one
transaction; an unchanged check (batched); a failure."""
from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime

from sqlalchemy import bindparam, update

from . import chain
from .models import Alert, Change, Check, Event, Target, Version
from .results import Verdict
from .store_types import BATCH_SIZE, Attempt, Capture, ClaimLost, Due, Failure, TargetState



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


class CheckRows:
    """Writes of the check pipeline (part of Store)."""


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
            seq, link = chain.next_version(conn, state.id)
            version_id = conn.execute(Version.__table__.insert(), dict(
                target_id=state.id, seq=seq, text_sha=capture.text_sha, raw_sha=capture.raw_sha, first_seen=at,
                last_seen=at, times_seen=1, http_status=capture.http_status, final_url=capture.final_url,
                headers=capture.headers, title=capture.title, words=capture.words, blocks=capture.blocks,
                extract_key=capture.extract_key, same_as_id=restored_id, previous_sha=link,
                screenshot_sha=screenshot_sha, response_sha=response_sha)).inserted_primary_key[0]
            change_id = conn.execute(Change.__table__.insert(), dict(
                target_id=state.id, from_version_id=state.last_version_id, to_version_id=version_id,
                kind=verdict.kind, restored_version_id=restored_id, detected_at=at, summary=verdict.summary,
                score=verdict.score, stats=verdict.stats, passages=verdict.passages)).inserted_primary_key[0]
            if verdict.alert:
                self._event(conn, state, verdict.event_kind, verdict.event_summary or verdict.summary,
                            at, change_id, verdict.stats, verdict.passages)
            check_id = conn.execute(Check.__table__.insert(), dict(
                target_id=state.id, at=at, until=at, count=1, duration_ms=duration_ms,
                http_status=capture.http_status, outcome=outcome, version_id=version_id)).inserted_primary_key[0]
            self._write_state(conn, state, **({"last_change_at": at} if edited else {}), last_check_at=at, last_ok_at=at, status="ok", last_error=None,
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
        event_id = conn.execute(Event.__table__.insert(), dict(
            target_id=state.id, change_id=change_id, kind=kind, created_at=at, summary=summary)).inserted_primary_key[0]
        routes = self.router(state.name, kind, stats or {}, passages or [], self.site_name(conn, state.site_id))
        if routes:
            conn.execute(Alert.__table__.insert(), [
                dict(event_id=event_id, channel=channel, priority=priority, state="pending", attempts=0,
                     created_at=at, next_attempt_at=at) for channel, priority in routes])
        return event_id
