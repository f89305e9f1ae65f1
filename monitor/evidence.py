"""The evidence commands' work, for the CLI to present: export captures as WARC/WACZ, verify the
stored history, and import captures from WARC files (the Wayback Machine: monitor/wayback.py)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select

from . import chain, read, timestamps, warc
from .config import ConfigError, Settings
from .merge import MergeError, Merger, Outcome
from .models import Target, Version
from .store import Store, StoreError
from .sync import sync_targets


class EvidenceError(Exception):
    """A command that cannot go ahead (the message names the target, file or version)."""


# What the evidence commands raise for a problem a user can act on (each message names it).
ERRORS = (EvidenceError, MergeError, StoreError, warc.WarcError, timestamps.TimestampError)


def _targets(store: Store, name: str | None) -> list:
    if name is None:
        with store.engine.connect() as conn:
            return list(conn.execute(select(*read.TARGET).where(
                Target.id.in_(select(Version.target_id).distinct())).order_by(Target.name)))
    try:
        return [read.target(store, name)]
    except read.NotFound as exc:
        raise EvidenceError(f"{exc} in the database (has it been checked yet?)") from None


def _versions(store: Store, target, first: int | None, last: int | None) -> list:
    rows = sorted(read.versions(store, target.id), key=lambda v: v.seq)
    chosen = [v for v in rows if (first is None or v.seq >= first) and (last is None or v.seq <= last)]
    for ref, bound in (("--from", first), ("--to", last)):
        if bound is not None and not any(v.seq == bound for v in rows):
            raise EvidenceError(f"{target.name} has no version {bound} ({ref}); it has v1–v{len(rows)}")
    return chosen


def export(settings: Settings, store: Store, name: str | None, path: Path, first: int | None = None,
           last: int | None = None) -> warc.Exported:
    """Every capture of one target (NAME, optionally versions FIRST..LAST) or of all, to a WARC
    or WACZ file. Each capture is read (and so checked against its digest) as it is written."""
    targets = _targets(store, name)
    chosen = [(t, v) for t in targets for v in _versions(store, t, first, last)]
    if not chosen:
        raise EvidenceError("nothing to export: no versions stored yet" if name is None
                            else f"{name} has no versions to export")

    stamped = {t.id: read.stamps_by_head(store, t.id) for t in targets}

    def items():
        for target, version in chosen:
            kept = {"raw": version.raw_sha, "response": getattr(version, "response_sha", None),
                    "screenshot": getattr(version, "screenshot_sha", None)}
            stamp = stamped[target.id].get(chain.digest(version))
            try:
                blobs = {k: store.snapshots.get(sha) for k, sha in kept.items() if sha}
                stamps = [(stamp, timestamps.token_of(store, stamp))] if stamp else []
            except Exception as exc:
                raise EvidenceError(f"{target.name} v{version.seq}: {exc}; run `monitor verify {target.name}`")
            yield target, version, blobs, stamps

    monitor = settings.monitor
    signing = (monitor.wacz_signing_url, monitor.wacz_signing_token) if monitor.wacz_signing_url else None
    return warc.export(items(), path, monitor.user_agent, signing)


def verify(store: Store, name: str | None) -> list[chain.Verified]:
    """Each target's chain, captures and trusted timestamps checked (monitor/chain.py,
    monitor/timestamps.py); a timestamp's problem fails a target whose chain is intact."""
    results = []
    for target in _targets(store, name):
        result = chain.verify(store, target.id, target.name)
        with store.engine.connect() as conn:
            imported = conn.execute(select(Version.id).where(Version.target_id == target.id,
                                                             Version.source.is_not(None)).limit(1)).first()
        result.timestamps = timestamps.check(store, target.id, result, imported is not None)
        if result.ok:
            result.problem = next((c.problem for c in result.timestamps if c.problem), None)
        results.append(result)
    return results


async def stamp(settings: Settings, store: Store, name: str | None) -> list:
    """A trusted timestamp of the chain head of target `name` (or of every target with versions):
    the one stored, else a new one from `[monitor] timestamp_url`. Each target's Stamped, or the
    TimestampError that kept it from one."""
    names = [t.name for t in _targets(store, name)]
    done = []
    async with timestamps.client(settings.monitor.user_agent) as client:
        for target in names:
            try:
                done.append(await timestamps.stamp(store, client, settings.monitor.timestamp_url, target))
            except timestamps.TimestampError as exc:
                done.append(exc)
    return done


def save_token(store: Store, stamped: timestamps.Stamped, path: Path) -> None:
    """Write a stamped head's token (the TSA's reply, a .tsr file), whole or not at all."""
    from .files import write_atomic

    path = Path(path)
    if not path.parent.is_dir():
        raise EvidenceError(f"{path}: the folder {path.parent} does not exist")
    try:
        write_atomic(path, timestamps.token_of(store, stamped.stamp), mode=0o644)
    except OSError as exc:
        raise EvidenceError(f"{path}: cannot write it: {exc.strerror or exc}") from None


def watch_of(settings: Settings, store: Store, name: str):
    """A target's settings (its [[targets]] entry, or its site's for a discovered post) and its
    state, the targets table brought up to date with the config first."""
    try:
        sync_targets(settings, store)
    except ConfigError as exc:
        raise EvidenceError(str(exc)) from None
    state = store.state(name)
    if state is None:
        raise EvidenceError(f"no target named {name!r} in {settings.path} or among the posts of its sites")
    site = store.site_names().get(state.site_id) if state.site_id else None
    watch = settings.watch(name, site)
    if watch is None:
        raise EvidenceError(f"{name} is no longer in {settings.path}: add it back to import into it")
    return watch, state


@dataclass
class Imported:
    outcomes: list[Outcome] = field(default_factory=list)
    other: int = 0  # records that are not HTML pages answered 200
    unwatched: list[str] = field(default_factory=list)  # URLs of pages no target watches
    refused: list[str] = field(default_factory=list)


def import_warc(settings: Settings, store: Store, path: Path, name: str | None = None) -> Imported:
    """The HTML pages of a WARC file, each merged into the history of the target that watches its
    URL (or of target `name`)."""
    listing = warc.listing(Path(path))
    done = Imported(other=listing.other, refused=list(listing.refused))
    groups: dict[str, list] = {}
    if name is not None:
        watch_of(settings, store, name)
        groups[name] = listing.entries
    else:
        try:
            sync_targets(settings, store)
        except ConfigError as exc:
            raise EvidenceError(str(exc)) from None
        known = store.known_urls()
        names = {tid: n for n, tid in ((t.name, t.id) for t in _all_targets(store))}
        for entry in listing.entries:
            found = known.get(entry.url)
            if found is None:
                if entry.url not in done.unwatched:
                    done.unwatched.append(entry.url)
                continue
            groups.setdefault(names[found[0]], []).append(entry)
    for target_name, entries in groups.items():
        watch, state = watch_of(settings, store, target_name)
        merger = Merger(store, watch, state)
        try:
            for capture in warc.captures(Path(path), entries, settings.monitor.max_bytes):
                if isinstance(capture, str):
                    done.refused.append(capture)
                else:
                    merger.add(capture)
        finally:
            done.outcomes.append(merger.close())
    return done


def _all_targets(store: Store) -> list:
    with store.engine.connect() as conn:
        return list(conn.execute(select(Target.id, Target.name)))
