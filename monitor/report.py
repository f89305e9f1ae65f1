"""Stored rows -> the documented JSON shapes (shared by every reader: the CLI's `--json` and the
web API; monitor/schema.py describes them) and terminal text."""
from __future__ import annotations

from .diff import DELETE, INSERT, diff_blocks
from .extract import parse_text
from .models import Alert, Change, Check, Event, Target, Version
from .store import Store
from .times import iso


def target_dict(target: Target, versions: int = 0, changes: int = 0, site: str | None = None) -> dict:
    return {
        "name": target.name,
        "url": target.url,
        "site": site,
        "published": iso(target.published_at),
        "active": target.active,
        "status": target.status,
        "interval_s": target.interval_s,
        "last_check": iso(target.last_check_at),
        "last_ok": iso(target.last_ok_at),
        "last_change": iso(target.last_change_at),
        "next_due": iso(target.next_due_at),
        "last_error": target.last_error,
        "versions": versions,
        "changes": changes,
    }


def version_dict(version: Version) -> dict:
    return {
        "version": version.seq,
        "first_seen": iso(version.first_seen),
        "last_seen": iso(version.last_seen),
        "times_seen": version.times_seen,
        "http_status": version.http_status,
        "final_url": version.final_url,
        "title": version.title,
        "words": version.words,
        "blocks": version.blocks,
        "text_sha256": version.text_sha,
        "raw_sha256": version.raw_sha,
    }


def change_dict(change: Change, seq_of: dict[int, int]) -> dict:
    return {
        "id": change.id,
        "kind": change.kind,
        "from_version": seq_of.get(change.from_version_id),
        "to_version": seq_of.get(change.to_version_id),
        "restored_version": seq_of.get(change.restored_version_id),
        "detected_at": iso(change.detected_at),
        "summary": change.summary,
        "score": change.score,
        "stats": change.stats,
        "passages": change.passages,
    }


def target_change_dict(change: Change, seq_of: dict[int, int], target: str) -> dict:
    """A change in a list across targets: change_dict plus the target's name."""
    return {**change_dict(change, seq_of), "target": target}


def check_dict(check: Check, seq_of: dict[int, int]) -> dict:
    return {
        "at": iso(check.at),
        "until": iso(check.until),
        "count": check.count,
        "outcome": check.outcome,
        "http_status": check.http_status,
        "error": check.error,
        "version": seq_of.get(check.version_id),
        "duration_ms": check.duration_ms,
    }


def event_dict(event: Event) -> dict:
    return {"id": event.id, "kind": event.kind, "created_at": iso(event.created_at), "summary": event.summary,
            "change_id": event.change_id}


def alert_dict(alert: Alert, event: Event, target: Target) -> dict:
    return {
        "id": alert.id,
        "channel": alert.channel,
        "state": alert.state,
        "priority": alert.priority,
        "attempts": alert.attempts,
        "redelivered": alert.redelivered,
        "created_at": iso(alert.created_at),
        "next_attempt_at": iso(alert.next_attempt_at) if alert.state == "pending" else None,
        "sent_at": iso(alert.sent_at),
        "last_error": alert.last_error,
        "target": target.name,
        "kind": event.kind,
        "summary": event.summary,
        "change_id": event.change_id,
    }


def target_list(store: Store, include_inactive: bool = False, paused: frozenset[str] = frozenset()) -> list[dict]:
    """Every watched target, and the paused ones (a paused site's posts too) with status "paused"."""
    counts = store.counts()
    sites = store.site_names()
    out = []
    for t in store.targets(include_inactive or bool(paused)):
        site = sites.get(t.site_id)
        held = t.name in paused or (site in paused and t.alias_of is None)
        if t.active or include_inactive or held:
            row = target_dict(t, *counts.get(t.id, (0, 0)), site=site)
            if held:
                row["status"] = "paused"
            out.append(row)
    return out


def site_list(store: Store, settings) -> list[dict]:
    """Each configured site: its sources, how many posts it has, and how its discovery went."""
    rows = {r.name: r for r in store.site_rows()}
    counts = store.post_counts()
    out = []
    for site in settings.sites:
        row = rows.get(site.name)
        c = counts.get(row.id, {}) if row else {}
        sources = (row.sources or {}) if row else {}
        out.append({
            "name": site.name,
            "feeds": site.feeds,
            "sitemaps": site.sitemaps,
            "posts": c.get("posts", 0),
            "unchecked": c.get("new", 0),
            "gone": c.get("gone", 0),
            "duplicates": c.get("aliases", 0),
            "status": row.status if row else "new",
            "last_discovery": iso(row.last_discovery_at) if row else None,
            "next_discovery": iso(row.next_discovery_at) if row else None,
            "last_error": row.last_error if row else None,
            "sources": [{"url": url, "urls": info.get("urls"), "error": info.get("error")}
                        for url, info in sources.items()],
        })
    return out


def alert_list(store: Store, failed_only: bool = False, limit: int = 200) -> list[dict]:
    return [alert_dict(alert, event, target) for alert, event, target in store.alerts(failed_only, limit)]


def history(store: Store, name: str, checks: int = 50) -> dict:
    target = store.target(name)
    versions = store.versions(target.id)
    changes = store.changes(target.id)
    seq_of = {v.id: v.seq for v in versions}
    return {
        "target": target_dict(target, len(versions), sum(1 for c in changes if c.kind != "first"),
                              site=store.site_names().get(target.site_id)),
        "versions": [version_dict(v) for v in versions],
        "changes": [change_dict(c, seq_of) for c in changes],
        "events": [event_dict(e) for e in reversed(store.events(target.id))],
        "checks": [check_dict(c, seq_of) for c in store.checks(target.id, limit=checks)],
    }


def diff_versions(store: Store, old: Version, new: Version) -> dict:
    """Word diff between two stored versions (recomputed from the snapshots: diffs are pure)."""
    return diff_texts(store.snapshots.get_text(old.text_sha), store.snapshots.get_text(new.text_sha))


def diff_texts(old: str, new: str) -> dict:
    """Word diff between two stored texts (as Snapshots.get_text returns them)."""
    return diff_blocks(parse_text(old).lines, parse_text(new).lines)


def diff_dict(name: str, old: Version, new: Version, result: dict) -> dict:
    """`monitor diff --json`: diff_versions() with the target and the two version numbers."""
    return {"target": name, "from_version": old.seq, "to_version": new.seq, **result}


def show_dict(name: str, version: Version, doc) -> dict:
    """`monitor show --json`: one version's extracted text (doc: extract.parse_text's result)."""
    return {"target": name, "version": version.seq, "first_seen": iso(version.first_seen),
            "title": doc.title, "blocks": doc.blocks}


def render_ops(ops: list[list], color: bool, context: int | None = 2) -> str:
    """Terminal diff: removed words red and struck through, added green; without colour,
    [-removed-] and {+added+}. With `context`, unchanged lines far from a change are elided."""
    import click

    lines: list[tuple[str, bool]] = []
    current: list[str] = []
    changed = False
    for op, text in ops:
        parts = text.split("\n")
        for k, part in enumerate(parts):
            if k:
                lines.append(("".join(current), changed))
                current, changed = [], False
            if not part:
                changed = changed or (op != 0 and k < len(parts) - 1)
                continue
            if op == DELETE:
                current.append(click.style(part, fg="red", strikethrough=True) if color else f"[-{part}-]")
            elif op == INSERT:
                current.append(click.style(part, fg="green", bold=True) if color else f"{{+{part}+}}")
            else:
                current.append(part)
            changed = changed or op != 0
    if current:
        lines.append(("".join(current), changed))
    if context is None:
        return "\n".join(line for line, _ in lines)
    marked = [i for i, (_, flag) in enumerate(lines) if flag]
    keep = sorted({j for i in marked for j in range(max(0, i - context), min(len(lines), i + context + 1))})
    out, last = [], -1
    for i in keep:
        if last >= 0 and i > last + 1:
            out.append("  …")
        out.append(lines[i][0])
        last = i
    return "\n".join(out)
