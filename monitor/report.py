"""The documented JSON documents (the CLI's `--json` and the web API; monitor/schema.py's models,
filled from monitor/read.py's rows) and terminal text."""
from __future__ import annotations

from . import read, schema
from .diff import DELETE, INSERT, diff_blocks
from .extract import parse_text
from .store import Store


def target_list(store: Store, include_inactive: bool = False, paused: frozenset[str] = frozenset()) -> list[dict]:
    """Every watched target, and the paused ones (a paused site's posts too) with status "paused"."""
    return [schema.Target.of(row.target, row.versions, row.changes, site=row.site, paused=row.paused).doc()
            for row in read.overview(store, include_inactive, paused)]


def site_list(store: Store, settings) -> list[dict]:
    """Each configured site: its sources, how many posts it has, and how its discovery went."""
    rows = {r.name: r for r in store.site_rows()}
    counts = store.post_counts()
    out = []
    for site in settings.sites:
        row = rows.get(site.name)
        out.append(schema.Site.of(site, row, counts.get(row.id, {}) if row else {}).doc())
    return out


def alert_list(store: Store, failed_only: bool = False, limit: int = 200) -> list[dict]:
    return [schema.Alert.of(row).doc() for row in read.alerts(store, failed_only, limit)]


def history(store: Store, name: str, checks: int = 50) -> dict:
    """`monitor history NAME --json`: NotFound when there is no such target."""
    target = read.target(store, name)
    # Changes and checks before the versions they name: a check running meanwhile adds a version
    # before its change, so every change and check read here finds its version.
    changes = read.changes(store, target.id, limit=None).changes
    check_rows, _ = read.recent_checks(store, target.id, limit=checks)
    versions = read.versions(store, target.id)
    stamps = read.stamps_by_head(store, target.id)
    seq_of = {v.id: v.seq for v in versions}
    return schema.History(
        target=schema.Target.of(target, len(versions), sum(1 for c in changes if c.kind != "first"),
                                site=store.site_names().get(target.site_id)),
        versions=[schema.Version.of(v, name, stamps) for v in versions],
        changes=[schema.Change.of(c, seq_of) for c in changes],
        events=[schema.Event.of(e) for e in read.events(store, target.id)],
        checks=[schema.Check.of(c, seq_of) for c in check_rows]).doc()


def diff_versions(store: Store, old, new) -> dict:
    """Word diff between two stored version rows (recomputed from the snapshots: diffs are pure)."""
    return diff_texts(store.snapshots.get_text(old.text_sha), store.snapshots.get_text(new.text_sha))


def diff_texts(old: str, new: str) -> dict:
    """Word diff between two stored texts (as Snapshots.get_text returns them)."""
    return diff_blocks(parse_text(old).lines, parse_text(new).lines)


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
