"""The hash chain over a target's versions: tamper evidence for the stored history.

Each version keeps `previous_sha`, the SHA-256 of the previous version's record (GENESIS for a
target's first version), and the target keeps `chain_head`, the SHA-256 of its newest version's
record. A record is the version's capture time, the URL it was fetched from, the SHA-256 of the
capture as fetched and of the text read from it, and its own `previous_sha`, written as compact
JSON with sorted keys, so anyone can recompute it:

>>> from datetime import datetime, timezone
>>> record(datetime(2018, 1, 24, 17, 2, tzinfo=timezone.utc), "https://example.org/post",
...        "a" * 64, "b" * 64, GENESIS)[:60]
b'{"captured_at":"2018-01-24T17:02:00.000000Z","previous":"000'

Editing, deleting or reordering a stored version (its row or its capture files) breaks a link
that `monitor verify` finds. Versions are chained in version-number order; importing older
captures (monitor/merge.py) renumbers and re-links them, after checking the chain first.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone

from sqlalchemy import bindparam, select, update

from .models import Target, Version
from .snapshots import SnapshotError

GENESIS = "0" * 64
_COLUMNS = (Version.id, Version.seq, Version.first_seen, Version.final_url, Version.raw_sha, Version.text_sha,
            Version.previous_sha)
# A browser's capture also keeps a screenshot and its HTTP response before rendering (monitor/browser.py).
_FILES = {"screenshot": "screenshot_sha", "HTTP response": "response_sha"}


def moment(when: datetime) -> str:
    """A capture time as the chain writes it: UTC to the microsecond (a time read back without a
    zone is UTC, as every stored time is)."""
    if when.tzinfo is not None:
        when = when.astimezone(timezone.utc)
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def record(captured_at: datetime, url: str | None, raw_sha: str, text_sha: str, previous: str | None) -> bytes:
    return json.dumps({"captured_at": moment(captured_at), "url": url or "", "raw_sha256": raw_sha,
                       "text_sha256": text_sha, "previous": previous or ""},
                      sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def link_of(captured_at: datetime, url: str | None, raw_sha: str, text_sha: str, previous: str | None) -> str:
    """The SHA-256 of a version's record: what the next version records as `previous_sha`."""
    return hashlib.sha256(record(captured_at, url, raw_sha, text_sha, previous)).hexdigest()


def record_of(row) -> bytes:
    """record() of a version row (any object with the version's column names)."""
    return record(row.first_seen, row.final_url, row.raw_sha, row.text_sha, row.previous_sha)


def digest(row) -> str:
    """link_of() a version row: the SHA-256 of its record."""
    return hashlib.sha256(record_of(row)).hexdigest()


_NEWEST = select(*_COLUMNS).where(Version.target_id == bindparam("b_tid")).order_by(Version.seq.desc()).limit(1)


def newest(conn, target_id: int):
    """The target's newest version (its chain columns and seq), or None."""
    return conn.execute(_NEWEST, {"b_tid": target_id}).first()


def next_version(conn, target_id: int) -> tuple[int, str]:
    """The target's next version's number, and what it records as `previous_sha`: its newest
    version's digest."""
    row = newest(conn, target_id)
    return (row.seq + 1, digest(row)) if row else (1, GENESIS)


def next_link(conn, target_id: int) -> str:
    """What the target's next version records as `previous_sha`."""
    return next_version(conn, target_id)[1]


def relink(conn, target_id: int) -> str | None:
    """Link a target's versions again in version-number order and set its chain head; returns
    the head. For an upgrade (versions stored before the chain existed) and after an import."""
    head = GENESIS
    for row in conn.execute(select(*_COLUMNS).where(Version.target_id == target_id).order_by(Version.seq)).all():
        if row.previous_sha != head:
            conn.execute(update(Version).where(Version.id == row.id).values(previous_sha=head))
        head = link_of(row.first_seen, row.final_url, row.raw_sha, row.text_sha, head)
    head = None if head == GENESIS else head
    conn.execute(update(Target).where(Target.id == target_id).values(chain_head=head))
    return head


@dataclass
class Verified:
    """One target's chain as `monitor verify` found it: `problem` names the first broken link."""

    target: str
    versions: int = 0
    head: str | None = None
    problem: str | None = None
    captures: int = 0  # capture and text files re-hashed
    links: dict[str, int] = field(default_factory=dict)  # each intact version's record digest -> its seq
    timestamps: list = field(default_factory=list)  # monitor/timestamps.py's Checked, newest first

    @property
    def ok(self) -> bool:
        return self.problem is None


def verify(store, target_id: int, name: str, snapshots: bool = True) -> Verified:
    """Check a target's chain link by link and (with `snapshots`) re-hash every stored capture
    and text; stops at the first problem, naming the version and what is wrong with it."""
    result = Verified(name)
    with store.engine.connect() as conn:
        extra = [getattr(Version, column) for column in _FILES.values() if hasattr(Version, column)]
        rows = conn.execute(select(*_COLUMNS, *extra).where(Version.target_id == target_id)
                            .order_by(Version.seq)).all()
        stored_head = conn.execute(select(Target.chain_head, Target.last_version_id)
                                   .where(Target.id == target_id)).first()
    result.versions = len(rows)
    previous, before = GENESIS, None
    for expected_seq, row in enumerate(rows, start=1):
        where = f"v{row.seq}"
        if row.seq != expected_seq:
            missing = f"v{expected_seq}" if row.seq > expected_seq else f"a second v{row.seq}"
            result.problem = f"{where}: {missing} is missing from the history (deleted or renumbered)"
            return result
        if row.previous_sha is None:
            result.problem = f"{where}: not linked into the chain (stored by something that bypassed the store)"
            return result
        if row.previous_sha != previous:
            if before is None:
                what = "it should be the first link of the chain"
            else:
                what = (f"v{before.seq}'s record (capture time, URL or digests) now hashes to {previous[:12]}…; "
                        f"v{before.seq} or v{row.seq} was altered, or a version between them removed")
            result.problem = f"{where}: link broken: it records {row.previous_sha[:12]}…, but {what}"
            return result
        if snapshots:
            files = [("capture", row.raw_sha), ("text", row.text_sha)]
            files += [(kind, getattr(row, column, None)) for kind, column in _FILES.items()]
            for kind, sha in files:
                if sha is None:
                    continue
                try:
                    store.snapshots.get(sha)
                except SnapshotError as exc:
                    result.problem = f"{where}: its {kind} file fails: {exc}"
                    return result
                except OSError as exc:
                    result.problem = f"{where}: its {kind} file {sha[:12]}… cannot be read: {exc.strerror or exc}"
                    return result
                result.captures += 1
        previous, before = digest(row), row
        result.links[previous] = row.seq
    result.head = previous if rows else None
    head, newest = stored_head if stored_head is not None else (None, None)
    if newest is not None and newest not in {r.id for r in rows}:
        result.problem = "the target's newest version is missing from the history (deleted)"
    elif rows and head != previous:
        last = f"v{rows[-1].seq}"
        recorded = f"records {head[:12]}…" if head else "records none"
        result.problem = (f"{last}: the target's chain head {recorded}, but {last}'s record hashes to "
                          f"{previous[:12]}…: {last} was altered, or newer versions removed")
    return result
