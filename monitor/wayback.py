"""A target's history from the Wayback Machine: its CDX API lists the captures of the target's URL
(output=json, filter=statuscode:200, collapse=digest, paged with showResumeKey), and each capture's
bytes as archived are fetched from its `id_` address, oldest first, through the Fetcher (its
limits, retries, a host's request to back off, and `wayback_delay` between requests). Each one
is merged into the target's history (monitor/merge.py) as it arrives, so an import cut short
goes on where it stopped when run again: captures already imported are not fetched again.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import urlencode, urlsplit

from .config import Settings
from .evidence import watch_of
from .fetch import Fetcher
from .merge import Found, Merger, Outcome
from .store import Store
from .times import iso

PAGE = 500  # CDX rows asked for at a time
MAX_PAGES = 200  # pages of a listing read at most
MAX_CAPTURES = PAGE * MAX_PAGES  # captures of one URL imported at most (a listing past it is cut)
FIELDS = ("timestamp", "original", "mimetype", "statuscode")
HTML_TYPES = ("text/html", "application/xhtml+xml")


class WaybackError(Exception):
    """The archive's listing cannot be read (the message names the address and the problem)."""


@dataclass
class Capture:
    timestamp: str
    original: str
    mimetype: str

    @property
    def captured_at(self) -> datetime:
        return datetime.strptime(self.timestamp, "%Y%m%d%H%M%S").replace(tzinfo=timezone.utc)


@dataclass
class WaybackImport:
    outcome: Outcome
    cdx: str
    listed: int = 0
    stopped: str | None = None  # why the import ended before the last capture


def replay_base(cdx: str) -> str:
    """Where an archive whose CDX API is at `cdx` serves its captures.

    >>> replay_base("https://web.archive.org/cdx/search/cdx")
    'https://web.archive.org/web/'
    """
    parts = urlsplit(cdx)
    return f"{parts.scheme}://{parts.netloc}/web/"


def capture_url(cdx: str, capture: Capture, raw: bool = True) -> str:
    """A capture's address: its bytes as archived (`id_`), or the archive's page of it."""
    return f"{replay_base(cdx)}{capture.timestamp}{'id_' if raw else ''}/{capture.original}"


def _rows(body: bytes, where: str) -> tuple[list[Capture], str | None]:
    """One CDX JSON page -> its captures and the resume key (None on the last page)."""
    try:
        data = json.loads(body) if body.strip() else []
    except (ValueError, UnicodeDecodeError) as exc:
        raise WaybackError(f"{where}: not CDX JSON ({exc})") from None
    if not isinstance(data, list) or not all(isinstance(r, list) for r in data):
        raise WaybackError(f"{where}: not CDX JSON (expected a list of rows)")
    if not data:
        return [], None
    header, rows, resume = data[0], data[1:], None
    if len(rows) >= 2 and rows[-2] == [] and len(rows[-1]) == 1:
        resume, rows = str(rows[-1][0]), rows[:-2]
    try:
        index = {name: header.index(name) for name in FIELDS}
    except ValueError:
        raise WaybackError(f"{where}: CDX JSON without the fields {', '.join(FIELDS)} (got {header!r})") from None
    found = []
    for row in rows:
        if len(row) != len(header) or not all(isinstance(v, str) for v in row):
            raise WaybackError(f"{where}: a CDX row does not match the header: {row!r:.200}")
        timestamp = row[index["timestamp"]]
        if not (len(timestamp) == 14 and timestamp.isascii() and timestamp.isdigit()):
            raise WaybackError(f"{where}: bad CDX timestamp {timestamp!r:.40}")
        if row[index["statuscode"]] != "200":
            continue
        found.append(Capture(timestamp, row[index["original"]], row[index["mimetype"]].lower()))
    return found, resume


async def listing(fetcher: Fetcher, cdx: str, url: str, since: datetime | None, until: datetime | None) -> list[Capture]:
    """Every HTML capture of `url` answered 200 the CDX API lists between the dates, oldest first."""
    query = {"url": url, "output": "json", "filter": "statuscode:200", "collapse": "digest", "limit": str(PAGE),
             "showResumeKey": "true"}
    if since:
        query["from"] = since.strftime("%Y%m%d%H%M%S")
    if until:
        query["to"] = until.strftime("%Y%m%d") if until.time() == datetime.min.time() else until.strftime("%Y%m%d%H%M%S")
    found: list[Capture] = []
    resume = None
    for _ in range(MAX_PAGES):
        address = f"{cdx}?{urlencode({**query, **({'resumeKey': resume} if resume else {})})}"
        fetched = await fetcher.fetch(address, document=True, origins=(cdx,))
        if fetched.error or fetched.status != 200:
            raise WaybackError(f"the CDX API at {cdx} did not answer the listing of {url}: "
                               f"{fetched.error or f'HTTP {fetched.status}'}")
        rows, resume = _rows(fetched.body, cdx)
        found += [c for c in rows if c.mimetype in HTML_TYPES][:MAX_CAPTURES - len(found)]
        if not resume or len(found) >= MAX_CAPTURES:
            break
    found.sort(key=lambda c: c.timestamp)
    return found


async def import_captures(settings: Settings, store: Store, name: str, since: datetime | None = None,
                          until: datetime | None = None) -> WaybackImport:
    watch, state = watch_of(settings, store, name)
    cdx = settings.monitor.wayback_cdx
    monitor = settings.monitor
    # The archive is one host: its requests are spaced by wayback_delay (or host_delay, if longer).
    fetcher = Fetcher(monitor.model_copy(update={"host_delay": max(monitor.host_delay, monitor.wayback_delay)}))
    merger = Merger(store, watch, state)
    done = WaybackImport(merger.outcome, cdx)
    try:
        async with fetcher:
            captures = await listing(fetcher, cdx, state.url, since, until)
            done.listed = len(captures)
            for capture in captures:
                address = capture_url(cdx, capture)
                if merger.imported(address):
                    merger.outcome.known += 1
                    continue
                fetched = await fetcher.fetch(address, origins=(cdx,))
                if fetched.deferred_until is not None:
                    done.stopped = f"the archive asked us to wait until {iso(fetched.deferred_until)}"
                    break
                if fetched.error or fetched.status != 200:
                    merger.outcome.skipped.append(f"{address}: {fetched.error or f'HTTP {fetched.status}'}")
                    continue
                merger.add(Found(captured_at=capture.captured_at, url=capture.original, body=fetched.body,
                                 http_status=200, headers=fetched.headers, source="wayback", source_url=address))
    finally:
        merger.close()
    return done
