"""The evidence commands of `monitor` (export, verify, import-warc, import-wayback): parse,
call monitor/evidence.py or monitor/wayback.py, present."""
from __future__ import annotations

import asyncio
import sys
from datetime import datetime, timezone

import click

from .cli_shared import _emit_json, _fail, _store, with_config
from .times import iso
from .words import plural


def _problem(exc: Exception):
    _fail(str(exc))


def _date(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        _fail(f"bad {option} date {value!r}: use YYYY-MM-DD")
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


@click.command()
@with_config
@click.argument("name", required=False)
@click.option("--all", "everything", is_flag=True, help="Every target's captures.")
@click.option("--from", "first", type=int, help="First version to export (default: the first).")
@click.option("--to", "last", type=int, help="Last version to export (default: the newest).")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="FILE.warc.gz (WARC 1.1) or FILE.wacz (WACZ).")
def export(settings, name, everything, first, last, output) -> None:
    """Every stored capture of NAME (or of --all targets) as a WARC 1.1 file, or a WACZ package,
    dated with the capture times. Exit 1 when a capture is missing or damaged (nothing written)."""
    from . import evidence

    if bool(name) == everything:
        _fail("give a target NAME or --all")
    if everything and (first or last):
        _fail("--from and --to apply to one target: give its NAME")
    with _store(settings) as store:
        try:
            done = evidence.export(settings, store, name, output, first, last)
        except evidence.ERRORS as exc:
            _problem(exc)
    click.echo(f"wrote {done.path}: {plural(done.versions, 'capture')} of {plural(len(done.targets), 'target')} "
               f"({plural(done.records, 'record')})")


@click.command()
@with_config
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def verify(settings, name, as_json) -> None:
    """Re-hash every stored capture of NAME (or of every target) and check the hash chain that
    links its versions. Exit 0 when all is intact; 1 naming the first broken link of each
    target that is not."""
    from . import evidence

    with _store(settings) as store:
        try:
            results = evidence.verify(store, name)
        except evidence.ERRORS as exc:
            _problem(exc)
    if as_json:
        _emit_json([{"target": r.target, "versions": r.versions, "files": r.captures, "head": r.head,
                     "ok": r.ok, "problem": r.problem, "timestamps": [
                         {"head": c.stamp.head, "version": c.seq, "stamped_at": iso(c.stamp.stamped_at),
                          "tsa": c.stamp.tsa_url, "token_sha256": c.stamp.token_sha, "problem": c.problem}
                         for c in r.timestamps]} for r in results])
    else:
        for r in results:
            if r.ok:
                click.echo(f"{r.target}: intact: {plural(r.versions, 'version')}, {plural(r.captures, 'file')} "
                           f"re-hashed; chain head {r.head}")
            else:
                click.echo(f"{r.target}: BROKEN at {r.problem}")
            for line in _timestamp_lines(r):
                click.echo(f"  {line}")
    broken = [r for r in results if not r.ok]
    if broken:
        _fail(f"{plural(len(broken), 'target')} failed verification: " + ", ".join(r.target for r in broken))


def _timestamp_lines(result) -> list[str]:
    """What `verify` says of a target's trusted timestamps: the newest one of a head in the chain,
    and any whose head the chain no longer holds."""
    lines, chained = [], [c for c in result.timestamps if c.seq is not None and c.problem is None]
    if chained:
        c = chained[0]
        lines.append(f"trusted timestamp of v{c.seq}'s record {c.stamp.head}: {iso(c.stamp.stamped_at)} by "
                     f"{c.stamp.tsa_url}" + (f" (and {plural(len(chained) - 1, 'earlier head')})"
                                             if len(chained) > 1 else ""))
    for c in result.timestamps:
        if c.seq is None and c.problem is None:
            lines.append(f"the timestamp of {iso(c.stamp.stamped_at)} covers head {c.stamp.head[:12]}…, which the "
                         "chain no longer holds: it was re-linked by an import since")
    return lines


def _report(outcomes, as_json: bool, extra: dict) -> None:
    if as_json:
        return _emit_json({**extra, "targets": [
            {"target": o.target, "added": [iso(a) for a in o.added], "seen": o.seen, "known": o.known,
             "skipped": o.skipped, "kinds": o.kinds} for o in outcomes]})
    for o in outcomes:
        click.echo(f"{o.target}: {plural(len(o.added), 'new version')}, {o.seen} more sightings of stored "
                   f"versions, {o.known} already stored" + (f", {len(o.skipped)} refused" if o.skipped else ""))
        for why in o.skipped:
            click.echo(f"  refused {why}")
        if o.added:
            click.echo(f"  changes now: {' → '.join(o.kinds)}")


@click.command("import-warc")
@with_config
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--target", "name", help="Import every HTML page of the file into this target.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def import_warc(settings, file, name, as_json) -> None:
    """Import the HTML pages of a WARC file (from Webrecorder, wget --warc-file, an export) as
    versions at their original capture times, each into the target watching its URL (or
    --target), and decide the changes again over the merged history. Importing a file twice adds
    nothing."""
    from . import evidence

    with _store(settings) as store:
        try:
            done = evidence.import_warc(settings, store, file, name)
        except evidence.ERRORS as exc:
            _problem(exc)
    _report(done.outcomes, as_json, {"file": file, "other_records": done.other, "unwatched": done.unwatched,
                                     "refused": done.refused})
    # A partial import is not a success: a script importing a file learns that part of it was refused.
    refused = len(done.refused) + sum(len(o.skipped) for o in done.outcomes)
    if as_json:
        if refused:
            sys.exit(1)
        return
    for why in done.refused:
        click.echo(f"refused {why}")
    if done.unwatched:
        shown = ", ".join(done.unwatched[:5]) + (" …" if len(done.unwatched) > 5 else "")
        click.echo(f"{plural(len(done.unwatched), 'page')} no target watches (use --target NAME): {shown}")
    if not done.outcomes:
        _fail(f"{file}: no HTML page of a watched target in it ({plural(done.other, 'other record')})")
    if refused:
        _fail(f"{file}: {plural(refused, 'record')} refused (listed above); everything else in it was imported")


@click.command("import-wayback")
@with_config
@click.argument("name")
@click.option("--from", "since", help="Earliest capture date (YYYY-MM-DD).")
@click.option("--to", "until", help="Latest capture date (YYYY-MM-DD).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def import_wayback(settings, name, since, until, as_json) -> None:
    """Import the Wayback Machine's captures of NAME's URL (its CDX API, [monitor] wayback_cdx),
    oldest first, as versions at their capture times; then decide the changes again over the
    merged history. Rate-limited; run it again to go on after an interruption."""
    from . import evidence, wayback

    start, end = _date(since, "--from"), _date(until, "--to")
    with _store(settings) as store:
        try:
            done = asyncio.run(wayback.import_captures(settings, store, name, start, end))
        except (*evidence.ERRORS, wayback.WaybackError) as exc:
            _problem(exc)
    _report([done.outcome], as_json, {"captures_listed": done.listed, "stopped": done.stopped})
    if as_json:
        return
    click.echo(f"{plural(done.listed, 'capture')} listed by {done.cdx}")
    if done.stopped:
        _fail(f"stopped early: {done.stopped}; run the same command again to go on")


@click.command()
@with_config
@click.argument("name", required=False)
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="Write the token (the TSA's reply, for `openssl ts -verify`) to FILE.tsr.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def timestamp(settings, name, output, as_json) -> None:
    """A trusted timestamp (RFC 3161) of NAME's chain head (or of every target's), from the
    time-stamping authority at [monitor] timestamp_url, unless the head has one already; with
    -o, its token written to FILE. Exit 1 when a head could not be timestamped."""
    from . import evidence

    if output and not name:
        _fail("-o writes one target's token: give its NAME")
    with _store(settings) as store:
        try:
            done = asyncio.run(evidence.stamp(settings, store, name))
            if output and not isinstance(done[0], Exception):
                evidence.save_token(store, done[0], output)
        except evidence.ERRORS as exc:
            _problem(exc)
    stamped = [d for d in done if not isinstance(d, Exception)]
    if as_json:
        _emit_json([{"target": d.target, "version": d.seq, "head": d.head, "stamped_at": iso(d.stamp.stamped_at),
                     "tsa": d.stamp.tsa_url, "token_sha256": d.stamp.token_sha, "new": d.fresh} for d in stamped])
    else:
        for d in stamped:
            click.echo(f"{d.target}: chain head {d.head} (v{d.seq}) {'timestamped' if d.fresh else 'already timestamped'}"
                       f" at {iso(d.stamp.stamped_at)} by {d.stamp.tsa_url}")
        if output and stamped:
            click.echo(f"wrote {output}; check it with: openssl ts -verify -digest {stamped[0].head} -in {output} "
                       "-CAfile <the TSA's CA certificate>")
    failed = [str(d) for d in done if isinstance(d, Exception)]
    if failed:
        _fail("; ".join(failed))


COMMANDS = (export, verify, import_warc, import_wayback, timestamp)
