"""The `monitor` command. Thin: parse input, call the pipeline or read the store, present."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import sys

import click

from . import config as config_module
from .loop import one_arena
from .words import plural

from .cli_shared import (CONFIG_HELP, EXIT_CONFIG, VERBOSE_HELP, _config_error, _emit_json, _fail,  # noqa: F401
                         _saving, _store, _verbosity, with_config)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help=VERBOSE_HELP)
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None, help=CONFIG_HELP)
@click.version_option(package_name="monitor", prog_name="monitor", message="%(prog)s %(version)s")
@click.pass_context
def main(ctx: click.Context, verbose: int, config_path: str | None) -> None:
    """Watch published pages for quiet edits: every version kept, word diffs, removals and restores."""
    ctx.obj = {"verbose": verbose, "config": config_path}
    one_arena()  # before any thread starts
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    _verbosity(verbose)


@main.command()
@with_config
@click.argument("names", nargs=-1)
@click.option("--discover", is_flag=True, help="Read every site's feeds and sitemaps first, due or not.")
@click.option("--due", is_flag=True, help="Check only what is due (each post at its own pace); for cron.")
def check(settings, names, discover, due) -> None:
    """Run the due site discoveries, then check every target and post once (or just NAMES), then
    exit. Exit 0 when the pass completed, even if some targets failed (their errors are recorded
    and printed); 1 when the database or disk did not take every result; 2 for a bad config or a
    database that cannot be opened."""
    from .app import discover_due, due_names, run_pass
    from .results import SKIPPED

    store = _store(settings)
    results, problems = [], []
    try:
        with _saving(store, problems):
            if not names:
                for found in asyncio.run(discover_due(settings, store, every=discover)):
                    click.echo(found.line())
            if due and not names:
                names = due_names(settings, store)
                if not names:
                    click.echo("nothing is due")
            results = run_pass(settings, store, list(names) or None) if names or not due else []
            store.checkpoint()
    except config_module.ConfigError as exc:
        _config_error(settings, exc)
    finally:
        with _saving(store, problems):
            store.close()
    counts: dict[str, int] = {}
    for result in results:
        counts[result.outcome] = counts.get(result.outcome, 0) + 1
        if result.outcome not in ("unchanged", SKIPPED):
            click.echo(result.line())
    skipped = counts.pop(SKIPPED, 0)
    summary = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
    click.echo(f"checked {plural(len(results) - skipped, 'target')}: "
               f"{summary or ('stopped' if problems else 'nothing to do')}")
    if skipped:
        click.echo(f"skipped {plural(skipped, 'target')} being checked by another process")
    if settings.config.alerts or settings.monitor.save_page_now or settings.monitor.timestamp_url:
        problems += _deliver(settings, wait=settings.monitor.alert_wait)
    problems += [r.unsaved for r in results if r.unsaved]
    if problems:
        _fail("not everything this pass found could be saved: " + "; ".join(dict.fromkeys(problems)))


def _deliver(settings, wait: float, everything: bool = False) -> list[str]:
    """Send what the outbox holds; returns the storage problems met (none, normally)."""
    from .app import deliver_alerts

    store = _store(settings)
    done, problems = None, []
    try:
        with _saving(store, problems):
            done = asyncio.run(deliver_alerts(settings, store, wait=wait, everything=everything))
    finally:
        with _saving(store, problems):
            store.close()
    if done:
        click.echo("alerts: " + ", ".join(f"{n} {k}" for k, n in sorted(done.items())))
    return problems


def _web_options(func):
    func = click.option("--port", default=8000, show_default=True, help="Port of the web UI.")(func)
    return click.option("--host", default="127.0.0.1", show_default=True,
                        help="Address of the web UI; any but loopback needs web_password or web_token.")(func)


def _web_server(settings, store, host: str, port: int):
    from .web.server import ServeError, WebServer

    try:
        return WebServer(settings, store, host, port)
    except ServeError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_CONFIG)


@main.command()
@with_config
@click.option("--serve", "with_web", is_flag=True, help="Also serve the web UI, API and feeds (see `serve`).")
@_web_options
def run(settings, with_web, host, port) -> None:
    """Run the daemon: check each target on its interval until stopped (SIGTERM/SIGINT).
    SIGHUP, or saving targets.toml, reloads the targets."""
    from .app import run_daemon

    if logging.getLogger().level > logging.INFO:
        logging.getLogger().setLevel(logging.INFO)
    with _store(settings) as store:
        run_daemon(settings, store, _web_server(settings, store, host, port) if with_web else None)


@main.command()
@with_config
@_web_options
def serve(settings, host, port) -> None:
    """Serve the web UI, JSON API (/api/) and RSS/Atom feeds over the database, read-only,
    until stopped (SIGTERM/SIGINT)."""
    if logging.getLogger().level > logging.INFO:
        logging.getLogger().setLevel(logging.INFO)
    with _store(settings) as store:
        web = _web_server(settings, store, host, port)
        click.echo(f"serving {web.url}")
        web.run()


@main.command()
@with_config
@click.option("--failed", is_flag=True, help="Only alerts that were given up on.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--flush", is_flag=True, help="Deliver everything pending now (retrying failed alerts once).")
def alerts(settings, failed, as_json, flush) -> None:
    """The alert outbox: each alert's channel, state, attempts and last error, newest first."""
    if flush:
        problems = _deliver(settings, wait=0.0, everything=True)
        if problems:
            _fail("; ".join(problems))
    from .report import alert_list

    with _store(settings) as store:
        rows = alert_list(store, failed_only=failed)
    if as_json:
        return _emit_json(rows)
    if not rows:
        return click.echo("no failed alerts" if failed else "the outbox is empty")
    for r in rows:
        line = (f"#{r['id']:<5} {r['state']:<8} {r['channel']:<12} {r['target']:<24} {r['kind']:<9} "
                f"tries {r['attempts']}  {r['created_at']}")
        line += f"  redelivered {r['redelivered']}" if r["redelivered"] else ""
        click.echo(line + ("  PRIORITY" if r["priority"] else ""))
        if r["last_error"] and r["state"] != "sent":
            click.echo(f"       └ {r['last_error']}" + (f" (next try {r['next_attempt_at']})" if r["state"] == "pending" else ""))


@main.command("test-alert")
@with_config
@click.argument("channel")
def test_alert(settings, channel) -> None:
    """Send a sample alert to CHANNEL, to check the wiring."""
    from .alerts.base import DeliveryError
    from .alerts.message import sample
    from .alerts.outbox import Outbox

    async def send() -> None:
        async with Outbox(None, settings) as outbox:
            await outbox.send_now(channel, sample(channel))

    try:
        asyncio.run(send())
    except DeliveryError as exc:
        _fail(f"test alert to {channel!r} not delivered: {exc}")
    click.echo(f"test alert sent to {channel!r}")


@main.command()
@with_config
@click.argument("name", required=False)
@click.option("--url", help="Explain a page that is not a target yet (zero configuration).")
@click.option("--forget", is_flag=True, help="Forget NAME's learned volatile rules (they are learned again).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def explain(settings, name, url, forget, as_json) -> None:
    """Which blocks of a page are watched, which are ignored and why: outside the main content,
    page chrome, learned volatile, or a user rule. Fetches the page now."""
    from .app import explain_page

    if bool(name) == bool(url):
        _fail("give a target NAME or --url URL")
    from .sites import post_named

    store = _store(settings) if name else None
    target = None
    if name:
        target = next((t for t in settings.targets if t.name == name), None) or post_named(settings, store, name)
        if target is None:
            store.close()
            _fail(f"no target named {name!r} in {settings.path} or among the posts of its sites")
    state = store.state(name) if store else None
    if forget:
        count = len(state.rules or []) if state else 0
        if state:
            store.set_rules(state, [], {})
        store.close()
        return click.echo(f"forgot {count} learned rules of {name}")
    try:
        report = asyncio.run(explain_page(settings, target, url, (state.rules or []) if state and target.learn else []))
    except Exception as exc:
        _fail(str(exc))
    finally:
        if store:
            store.close()
    if as_json:
        return _emit_json(report)
    click.echo(f"{report['url']}\nscope: {report['scope']}\ntitle: {report['title']}")
    if report["rules"]:
        click.echo(f"\nlearned volatile blocks ({len(report['rules'])}):")
        for rule in report["rules"]:
            click.echo(f"  {rule['action']:<5} {rule['path']}  ({rule['reason']})")
    watched = [b for b in report["blocks"] if b["reason"] is None]
    click.echo(f"\nwatched: {len(watched)} blocks, {sum(len(b['text'].split()) for b in watched)} words")
    for block in report["blocks"]:
        label = "WATCH" if block["reason"] is None else f"IGNORE {block['reason']}"
        click.echo(f"  {label}\n      {block['path'] or '(top)'}\n      {block['text'][:160]}")


@main.command()
@with_config
@click.option("--fleet", "fleet_wide", is_flag=True,
              help="Judge the whole fleet (a live worker, no check overdue), not this machine's daemon.")
def health(settings, fleet_wide) -> None:
    """Exit 0 when the daemon for this config is alive (its heartbeat is recent) and can save
    its captures (a snapshots folder takes a write), 1 otherwise; then how the fleet of workers
    sharing its database is doing."""
    from .health import health_lines

    ok, lines = health_lines(settings, fleet_wide)
    for line in lines[:-1] if not ok else lines:
        click.echo(line)
    if not ok:
        _fail(lines[-1])


@main.command()
@with_config
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def workers(settings, as_json) -> None:
    """The workers sharing this config's database: each `monitor run` with its last heartbeat,
    and every process holding claims (on targets, alerts, sites' discoveries, and hosts' request places)."""
    from .fleet import worker_list

    with _store(settings) as store:
        rows = worker_list(store.engine)
    if as_json:
        return _emit_json(rows)
    if not rows:
        return click.echo("no workers: no `monitor run` has a heartbeat here and no process holds a claim")
    click.echo(f"{'WORKER':<40} {'STATE':<13} {'BEAT':>7} {'UP':>7} {'CHECKS':>8} {'NOW':>5} "
               f"{'TARGETS':>7} {'ALERTS':>6} {'SITES':>5} {'HOSTS':>5}")
    for w in rows:
        beat = "-" if w["beat_age"] is None else _age(w["beat_age"])
        up = "-" if w["up"] is None else _age(w["up"])
        click.echo(f"{w['worker']:<40} {w['state']:<13} {beat:>7} {up:>7} {_count(w['checks']):>8} "
                   f"{_count(w['in_flight']):>5} {w['targets']:>7,} {w['alerts']:>6,} {w['sites']:>5,} {w['host_places']:>5,}")


def _count(n: int | None) -> str:
    return "-" if n is None else f"{n:,}"


def _age(seconds: float) -> str:
    return f"{seconds:.0f}s" if seconds < 60 else _short_duration(seconds)


@main.command()
@with_config
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--all", "include_inactive", is_flag=True, help="Include targets no longer in the config.")
def targets(settings, as_json, include_inactive) -> None:
    """Each target: status, last check, versions, last change."""
    from .report import target_list
    from .sync import sync_targets

    with _store(settings) as store:
        sync_targets(settings, store)
        rows = target_list(store, include_inactive, paused=settings.paused)
    if as_json:
        return _emit_json(rows)
    if not rows:
        return click.echo("no targets")
    width = max(len(r["name"]) for r in rows)
    click.echo(f"{'NAME':<{width}}  {'STATUS':<6}  {'LAST CHECK':<20}  {'EVERY':>6}  {'VERS':>4}  {'CHGS':>4}  "
               "LAST CHANGE")
    for r in rows:
        line = (f"{r['name']:<{width}}  {r['status']:<6}  {r['last_check'] or '-':<20}  "
                f"{_short_duration(r['interval_s']):>6}  {r['versions']:>4}  {r['changes']:>4}  {r['last_change'] or '-'}")
        click.echo(line)
        if r["last_error"] and r["status"] in ("error", "gone"):
            click.echo(f"{'':<{width}}  └ {r['last_error']}")


def _short_duration(seconds: float) -> str:
    """900 -> '15m', 5400 -> '1h30m', 0 -> '-' (not checked yet)."""
    if not seconds:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            whole, rest = divmod(int(seconds), size)
            smaller = {"d": ("h", 3600), "h": ("m", 60), "m": ("s", 1)}[unit]
            part = rest // smaller[1]
            return f"{whole}{unit}{part}{smaller[0]}" if part and whole < 10 else f"{whole}{unit}"
    return f"{seconds:g}s"


@main.command()
@with_config
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--discover", is_flag=True, help="Read every site's feeds and sitemaps now, then list.")
def sites(settings, as_json, discover) -> None:
    """Each site: its feeds and sitemaps, posts watched, and how its last discovery went."""
    from .app import discover_due
    from .report import site_list
    from .sync import sync_targets

    with _store(settings) as store:
        sync_targets(settings, store)
        if discover:
            for found in asyncio.run(discover_due(settings, store, every=True)):
                if not as_json:
                    click.echo(found.line())
        rows = site_list(store, settings)
    if as_json:
        return _emit_json(rows)
    if not rows:
        return click.echo("no sites (add one with `monitor add URL --site`, or a [[sites]] entry)")
    for r in rows:
        click.echo(f"{r['name']}: {plural(r['posts'], 'post')} ({r['unchecked']} not checked yet, {r['gone']} gone, "
                   f"{r['duplicates']} duplicate URLs folded); discovery {r['status']}, last "
                   f"{r['last_discovery'] or 'never'}, next {r['next_discovery'] or 'now'}")
        for source in r["sources"]:
            state = f"error: {source['error']}" if source["error"] else plural(source['urls'] or 0, 'URL')
            click.echo(f"  {source['url']}: {state}")


def _target_or_fail(store, name):
    from . import read

    try:
        return read.target(store, name)
    except read.NotFound as exc:
        _fail(f"{exc} in the database (has it been checked yet?)")


@main.command()
@with_config
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--checks", default=20, show_default=True, help="How many check rows to list.")
def history(settings, name, as_json, checks) -> None:
    """The versions and changes of one target, newest first."""
    from .report import history as build

    with _store(settings) as store:
        _target_or_fail(store, name)
        data = build(store, name, checks=checks)
    if as_json:
        return _emit_json(data)
    t = data["target"]
    click.echo(f"{t['name']}  {t['url']}")
    click.echo(f"status {t['status']}, {plural(t['versions'], 'version')}, {plural(t['changes'], 'change')}, "
               f"last check {t['last_check']}")
    if t["last_error"]:
        click.echo(f"last error: {t['last_error']}")
    if data["changes"]:
        click.echo("\nchanges:")
    for c in data["changes"]:
        arrow = f"v{c['from_version']} → v{c['to_version']}" if c["from_version"] else f"v{c['to_version']}"
        click.echo(f"  {c['detected_at']}  {arrow:<10} {c['kind']:<9} {c['summary']}")
    events = [e for e in data["events"] if e["kind"] in ("gone", "error", "recovered")]
    if events:
        click.echo("\nother events:")
        for e in events:
            click.echo(f"  {e['created_at']}  {e['kind']:<9} {e['summary']}")
    click.echo("\nversions:")
    for v in data["versions"]:
        click.echo(f"  v{v['version']:<3} first {v['first_seen']}  last {v['last_seen']}  seen {v['times_seen']}×  "
                   f"{plural(v['words'], 'word')}  {v['text_sha256'][:12]}"
                   + (f"  imported from {v['source_url']}" if v.get("source") else ""))
    if data["checks"]:
        click.echo(f"\nchecks (newest {len(data['checks'])}):")
    for c in data["checks"]:
        when = f"{c['at']} – {c['until']}" if c["count"] > 1 else c["at"]
        found = f" v{c['version']}" if c["version"] else ""
        status = f" HTTP {c['http_status']}" if c["http_status"] else ""
        times = f" ×{c['count']}" if c["count"] > 1 else ""
        click.echo(f"  {when}  {c['outcome']}{times}{found}{status}" + (f"  {c['error']}" if c["error"] else ""))


@contextlib.contextmanager
def _capture_of(what: str):
    """Exit 1 naming the version when its stored capture is missing or damaged."""
    from .snapshots import SnapshotError

    try:
        yield
    except SnapshotError as exc:
        _fail(f"{what}: {exc}")


def _version(store, target, ref: str | None, default):
    from . import read

    if ref is None:
        return default
    try:
        return read.version(store, target, ref)
    except read.NotFound as exc:
        _fail(str(exc))


@main.command()
@with_config
@click.argument("name")
@click.argument("from_version", required=False)
@click.argument("to_version", required=False)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--full", is_flag=True, help="Show the whole text, not just the changed lines.")
@click.option("--color/--no-color", default=None, help="Colour (default: when writing to a terminal).")
def diff(settings, name, from_version, to_version, as_json, full, color) -> None:
    """Word diff between two versions; by default the latest change. Removed words red and struck
    through, added words green ([-removed-] and {+added+} without colour)."""
    from .read import versions as versions_of
    from .report import diff_versions

    with _store(settings) as store:
        target = _target_or_fail(store, name)
        versions = versions_of(store, target.id)  # newest first
        if not versions:
            _fail(f"{name} has no versions yet")
        if from_version is None:
            if len(versions) < 2:
                _fail(f"{name} has only one version: nothing to compare yet")
            old, new = versions[1], versions[0]
        else:
            old = _version(store, target, from_version, None)
            new = _version(store, target, to_version, versions[0])
        with _capture_of(f"{name} v{old.seq} → v{new.seq}"):
            result = diff_versions(store, old, new)
    if as_json:
        from .schema import Diff

        return _emit_json(Diff.of(name, old, new, result).doc())
    from .report import render_ops

    use_color = sys.stdout.isatty() if color is None else color
    click.echo(f"{name}: v{old.seq} ({old.first_seen:%Y-%m-%d %H:%M}) → v{new.seq} ({new.first_seen:%Y-%m-%d %H:%M}), "
               f"-{result['stats']['words_removed']} +{result['stats']['words_added']} words")
    body = render_ops(result["ops"], use_color, context=None if full else 1)
    click.echo(body if body.strip() else "(no difference in text)", color=use_color)


@main.command()
@with_config
@click.argument("name")
@click.argument("version", required=False)
@click.option("--raw", is_flag=True, help="The raw capture (as fetched) instead of the extracted text.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def show(settings, name, version, raw, as_json) -> None:
    """The extracted text (or the raw capture) of a version; by default the latest."""
    from .extract import parse_text
    from .read import versions as versions_of
    from .schema import VersionText

    with _store(settings) as store:
        target = _target_or_fail(store, name)
        versions = versions_of(store, target.id)
        if not versions:
            _fail(f"{name} has no versions yet")
        chosen = _version(store, target, version, versions[0])
        with _capture_of(f"{name} v{chosen.seq}"):
            body = store.snapshots.get(chosen.raw_sha) if raw else store.snapshots.get_text(chosen.text_sha)
    if raw:
        sys.stdout.buffer.write(body)
        return
    doc = parse_text(body)
    if as_json:
        return _emit_json(VersionText.of(name, chosen, doc).doc())
    click.echo(f"{doc.title}\n")
    click.echo("\n\n".join(doc.blocks))


@main.command()
@click.argument("url")
@click.option("--site", is_flag=True, help="URL is a blog's home page: add it as a [[sites]] entry with the "
                                           "feeds and sitemaps found there (fetches it now).")
@click.option("--name", help="The entry's name (default: from the URL's host and path).")
@click.option("--offline", is_flag=True, help="Add a page without looking at it (by default it is fetched once, "
                                              "to suggest fetcher = \"browser\" when only a browser shows its text).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
              help="Path to targets.toml (default: ./targets.toml, or $MONITOR_CONFIG); created if missing.")
def add(url, site, name, offline, config_path) -> None:
    """Add URL to targets.toml as a [[targets]] page (or, with --site, a [[sites]] blog), keeping
    the file's comments and formatting. Exit 1 when --site finds no feed or sitemap; 2 for a bad
    config, a name already taken or a URL already watched (the file is then unchanged)."""
    from . import add as adding

    path = config_path or (click.get_current_context().find_root().obj or {}).get("config")
    try:
        click.echo(adding.add(config_module.config_path(path), url, site=site, name=name, offline=offline))
    except adding.AddError as exc:
        _fail(str(exc), exc.exit_code)



def _change_entry(action: str, name: str) -> None:
    from . import add as adding
    from .entries import change

    path = (click.get_current_context().find_root().obj or {}).get("config")
    try:
        click.echo(change(config_module.config_path(path), name, action))
    except adding.AddError as exc:
        _fail(str(exc), exc.exit_code)


def _entry_command(action: str, doc: str):
    @click.argument("name")
    @click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None, help=CONFIG_HELP)
    def command(name: str, config_path: str | None) -> None:
        if config_path:
            click.get_current_context().find_root().obj["config"] = config_path
        _change_entry(action, name)

    command.__doc__ = doc
    return main.command(action)(command)


_entry_command("pause", "Pause a [[targets]] or [[sites]] entry: not checked (a site: not discovered) until "
                        "resumed; its history is kept. Edits targets.toml in place, comments kept.")
_entry_command("resume", "Resume a paused [[targets]] or [[sites]] entry. Edits targets.toml in place.")
_entry_command("remove", "Remove a [[targets]] or [[sites]] entry from targets.toml (its comments with it); "
                         "its history is kept (`monitor targets --all`).")

from .evidence_cli import COMMANDS as _EVIDENCE  # noqa: E402

for _command in _EVIDENCE:  # export, verify, import-warc, import-wayback
    main.add_command(_command)

if __name__ == "__main__":
    main()
