"""Captures in and out as WARC (ISO 28500, version 1.1), the web archives' common format, through
the `warcio` library; and as WACZ (a WARC, its index and page list in one zip, signed by a signing
server where one is configured) through the `wacz` package.

Export: per version a `request` record and a `response` record (the HTTP status line, the
headers monitor keeps and the body as received), dated with the capture time, and a `metadata`
record tying it to the version, its text digest and its hash-chain link; a `warcinfo` record
first names the tool and says what is reconstructed. Every record is gzipped on its own, so any
record can be read without the others.

Import: `response` and `resource` records of HTML pages, read as monitor/merge.py describes, in
capture-time order whatever the file's order (two passes: an index of offsets, then each record
read where it lies, so memory stays that of one record).
"""
from __future__ import annotations

import contextlib
import http
import io
import json
import os
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit

from . import chain
from .fetch import KEPT_HEADERS
from .merge import Found

HTML_TYPES = ("text/html", "application/xhtml+xml")
SKIPPED_HEADERS = ("content-length", "content-encoding", "transfer-encoding")
ABOUT = ("monitor's captures. Response records hold the status and the headers monitor keeps ("
         + ", ".join(KEPT_HEADERS) + ") and the body as received, its content-encoding undone (so no "
         "Content-Encoding header; Content-Length is the body's); request records are reconstructed "
         "(method, URL, Host). Each metadata record names the monitor version, its text's SHA-256 and "
         "its hash-chain link (see the evidence documentation).")
MAX_LISTED = 5  # records of unwatched URLs named in a message


class WarcError(Exception):
    """A WARC file that cannot be written or read (the message names the file and the problem)."""


def _warcio():
    try:
        import warcio  # noqa: F401
    except ImportError:
        raise WarcError("WARC support needs the warcio package: pip install 'monitor[evidence]'") from None


@dataclass
class Exported:
    path: Path
    versions: int = 0
    records: int = 0
    targets: list[str] = field(default_factory=list)


def _date(when: datetime) -> str:
    return chain.moment(when)


def _reason(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return ""


def _resource(writer, uri: str, body: bytes, content_type: str, date: str):
    return writer.create_warc_record(uri, "resource", payload=io.BytesIO(body), length=len(body),
                                     warc_content_type=content_type, warc_headers_dict={"WARC-Date": date})


def _records(writer, target, version, blobs: dict[str, bytes], user_agent: str, stamps=()):
    """One version's records: the request and response (or, without an HTTP status, the page as a
    resource), then for a browser's capture the rendered DOM and the screenshot as resources,
    then the metadata record, then each trusted timestamp of the version's record (`stamps`:
    (timestamps row, its .tsr reply)). `blobs`: "raw" (the capture), and "response" (the HTTP
    answer before rendering) and "screenshot" (a PNG) when the version has them."""
    from warcio.statusandheaders import StatusAndHeaders

    url = version.final_url or target.url
    date = _date(version.first_seen)
    parts = urlsplit(url)
    rendered = "response" in blobs  # a browser's capture: raw is the rendered DOM
    body = blobs["response"] if rendered else blobs["raw"]
    headers = [(k.title() if k.islower() else k, v) for k, v in (version.headers or {}).items()
               if k.lower() not in SKIPPED_HEADERS]
    headers.append(("Content-Length", str(len(body))))
    content_type = next((v for k, v in headers if k.lower() == "content-type"), "text/html")
    if version.http_status is None:
        response = _resource(writer, url, body, content_type, date)
        records = [response]
    else:
        status = f"{version.http_status} {_reason(version.http_status)}".strip()
        response = writer.create_warc_record(
            url, "response", payload=io.BytesIO(body), length=len(body), warc_headers_dict={"WARC-Date": date},
            http_headers=StatusAndHeaders(status, headers, protocol="HTTP/1.1"))
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        request = writer.create_warc_record(
            url, "request", warc_headers_dict={"WARC-Date": date},
            http_headers=StatusAndHeaders(f"GET {path} HTTP/1.1", [("Host", parts.netloc), ("User-Agent", user_agent)],
                                          protocol="HTTP/1.1", is_http_request=True))
        request.rec_headers.add_header("WARC-Concurrent-To", response.rec_headers.get_header("WARC-Record-ID"))
        records = [request, response]
    if rendered:
        records.append(_resource(writer, url, blobs["raw"], "text/html; charset=utf-8", date))
    if "screenshot" in blobs:
        records.append(_resource(writer, f"urn:screenshot:{url}", blobs["screenshot"], "image/png", date))
    fields = [("target", target.name), ("version", str(version.seq)), ("captured-at", date),
              ("text-sha256", version.text_sha), ("chain-previous", version.previous_sha or ""),
              ("chain-record-sha256", chain.digest(version))]
    if version.source:
        fields.append(("via", version.source_url or version.source))
    block = "".join(f"{k}: {v}\r\n" for k, v in fields).encode("utf-8")
    metadata = writer.create_warc_record(url, "metadata", payload=io.BytesIO(block), length=len(block),
                                         warc_content_type="application/warc-fields",
                                         warc_headers_dict={"WARC-Date": date, "WARC-Refers-To":
                                                            response.rec_headers.get_header("WARC-Record-ID")})
    records.append(metadata)
    for row, reply in stamps:
        records += _timestamp(writer, target, version, row, reply, metadata.rec_headers.get_header("WARC-Record-ID"))
    return records


def _timestamp(writer, target, version, row, reply: bytes, refers_to: str) -> list:
    """An RFC 3161 timestamp of a version's record (a chain head, monitor/timestamps.py): the TSA's
    reply as a resource, and a metadata record saying what it covers and how to check it."""
    date = _date(row.stamped_at)
    token = _resource(writer, f"urn:timestamp:sha256:{row.head}", reply, "application/timestamp-reply", date)
    token.rec_headers.add_header("WARC-Refers-To", refers_to)
    fields = [("target", target.name), ("version", str(version.seq)), ("chain-head", row.head),
              ("tsa", row.tsa_url), ("stamped-at", date),
              ("check", f"openssl ts -verify -digest {row.head} -in TOKEN.tsr -CAfile TSA-CA.pem")]
    block = "".join(f"{k}: {v}\r\n" for k, v in fields).encode("utf-8")
    about = writer.create_warc_record(f"urn:timestamp:sha256:{row.head}", "metadata", payload=io.BytesIO(block),
                                      length=len(block), warc_content_type="application/warc-fields",
                                      warc_headers_dict={"WARC-Date": date, "WARC-Refers-To":
                                                         token.rec_headers.get_header("WARC-Record-ID")})
    return [token, about]


def write_warc(handle, items, user_agent: str, name: str) -> tuple[int, int]:
    """Write a warcinfo record, then the records of each (target, version, blobs, stamps) in
    `items` (as _records takes them). Returns (versions, records)."""
    from importlib.metadata import version as package_version

    from warcio.warcwriter import WARCWriter

    writer = WARCWriter(handle, gzip=True, warc_version="1.1")
    writer.write_record(writer.create_warcinfo_record(name, {
        "software": f"monitor/{package_version('monitor')} (warcio/{package_version('warcio')})",
        "format": "WARC File Format 1.1",
        "conformsTo": "https://iipc.github.io/warc-specifications/specifications/warc-format/warc-1.1/",
        "description": ABOUT,
    }))
    versions, records = 0, 1
    for target, version, blobs, stamps in items:
        for record in _records(writer, target, version, blobs, user_agent, stamps):
            writer.write_record(record)
            records += 1
        versions += 1
    return versions, records


def export(items, path: Path, user_agent: str, signing: tuple[str, str | None] | None = None) -> Exported:
    """Write `items` ((target, version, blobs, stamps as _records takes them), oldest first) to `path`: a WARC
    (.warc.gz) or a WACZ (.wacz; signed by the authsign server (URL, token) `signing` when given).
    Written beside it under a temporary name and renamed, so a failed export leaves no half file."""
    _warcio()
    path = Path(path)
    done = Exported(path)
    wacz = path.suffix.lower() == ".wacz"
    if not (wacz or path.name.lower().endswith(".warc.gz")):
        raise WarcError(f"{path}: name the output FILE.warc.gz (WARC) or FILE.wacz (WACZ)")
    if not path.parent.is_dir():
        raise WarcError(f"{path}: the folder {path.parent} does not exist")
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".monitor-export-") as work:
        warc = Path(work) / (path.stem + ".warc.gz" if wacz else path.name)
        seen: list[str] = []
        pages = [{"format": "json-pages-1.0", "id": "pages", "title": "Captures"}]
        try:
            with open(warc, "wb") as handle:
                def counted():
                    for target, version, blobs, stamps in items:
                        if target.name not in seen:
                            seen.append(target.name)
                        pages.append({"url": version.final_url or target.url, "ts": _date(version.first_seen),
                                      "title": f"{target.name} v{version.seq}: {version.title}"})
                        yield target, version, blobs, stamps
                done.versions, done.records = write_warc(handle, counted(), user_agent, path.name)
                handle.flush()
                os.fsync(handle.fileno())
            if wacz:
                listed = Path(work) / "pages.jsonl"
                listed.write_text("".join(json.dumps(p, ensure_ascii=False) + "\n" for p in pages), "utf-8")
                _package(warc, listed, Path(work) / path.name, signing)
                warc = Path(work) / path.name
            os.replace(warc, path)
        except OSError as exc:
            raise WarcError(f"{path}: cannot write it: {exc.strerror or exc}") from None
        done.targets = seen
    return done


# `wacz create` in a process of its own: the package asks a signing server with no time limit.
_CREATE = """import os, sys
from wacz.main import main
args = sys.argv[1:]
token = os.environ.pop("MONITOR_WACZ_SIGNING_TOKEN", "")
sys.exit(main(args + (["--signing-token", token] if token else [])))
"""
SIGNING_TIME = 300.0  # seconds for `wacz create` when it has the package signed


def _package(warc: Path, pages: Path, out: Path, signing: tuple[str, str | None] | None = None) -> None:
    """WARC -> WACZ with the wacz package (index, page list, datapackage digests; signed by the
    authsign server at signing[0] with token signing[1] when given), then the package's own
    validation of the result."""
    import importlib.util
    import subprocess
    import sys
    import zipfile

    if importlib.util.find_spec("wacz") is None:
        raise WarcError("WACZ export needs the wacz package: pip install 'monitor[evidence]'")
    from wacz.main import main as wacz_main

    args = ["create", "-o", str(out), "--pages", str(pages), str(warc)]
    env = dict(os.environ)
    if signing:
        args += ["--signing-url", signing[0]]
        env["MONITOR_WACZ_SIGNING_TOKEN"] = signing[1] or ""
    try:
        created = subprocess.run([sys.executable, "-c", _CREATE, *args], env=env, capture_output=True, text=True,
                                 timeout=SIGNING_TIME if signing else None)
    except subprocess.TimeoutExpired:
        raise WarcError(f"{out.name}: the signing server {signing[0]} did not answer within "
                        f"{SIGNING_TIME:.0f} s; nothing written") from None
    said = (created.stdout + created.stderr).strip().splitlines()
    if created.returncode != 0:
        raise WarcError(f"{out.name}: the wacz package could not pack it ({(said or ['no message'])[-1][:300]})")
    if signing:
        with zipfile.ZipFile(out) as package:
            digest = json.loads(package.read("datapackage-digest.json"))
        if "signedData" not in digest:
            why = next((line.split("Signing Failed: ", 1)[1] for line in reversed(said) if "Signing Failed: " in line),
                       "no signature in its answer")
            raise WarcError(f"{out.name}: the signing server {signing[0]} did not sign it ({why[:300]}); "
                            "nothing written")
    noise = io.StringIO()
    with contextlib.redirect_stdout(noise):
        valid = wacz_main(["validate", "-f", str(out)]) == 0
    if not valid:
        last = noise.getvalue().strip().splitlines()[-1:] or ["no message"]
        raise WarcError(f"{out.name}: the wacz package did not produce a valid WACZ ({last[0]})")


# ---- import -------------------------------------------------------------------------------------

@dataclass
class Entry:
    """A record worth importing, found in the first pass."""

    offset: int
    captured_at: datetime
    url: str
    kind: str  # response | resource


@dataclass
class Listing:
    entries: list[Entry] = field(default_factory=list)
    other: int = 0  # records that are not an HTML page answered 200 (requests, images, logs...)
    refused: list[str] = field(default_factory=list)


def _uri(record) -> str:
    return (record.rec_headers.get_header("WARC-Target-URI") or "").strip().strip("<>")


def _when(record) -> datetime:
    from warcio.timeutils import iso_date_to_datetime

    return iso_date_to_datetime(record.rec_headers.get_header("WARC-Date") or "").replace(tzinfo=timezone.utc)


def _content_type(record) -> str:
    if record.rec_type == "response":
        value = record.http_headers.get_header("Content-Type") if record.http_headers else None
    else:
        value = record.rec_headers.get_header("Content-Type")
    return (value or "").split(";")[0].strip().lower()


def _is_page(record) -> bool:
    if record.rec_type == "response":
        if record.http_headers is None or record.http_headers.get_statuscode() != "200":
            return False
    elif record.rec_type != "resource":
        return False
    return _content_type(record) in HTML_TYPES


def _open(path: Path):
    try:
        return open(path, "rb")
    except OSError as exc:
        raise WarcError(f"{path}: cannot read it: {exc.strerror or exc}") from None


def _failure(path: Path, exc: Exception) -> WarcError:
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return WarcError(f"{path}: not a readable WARC file ({detail[:200]})")


def listing(path: Path) -> Listing:
    """First pass: where the HTML pages are and when each was captured."""
    _warcio()
    from warcio.archiveiterator import ArchiveIterator

    found = Listing()
    with _open(path) as handle, contextlib.redirect_stderr(io.StringIO()):  # warcio's warnings: our error says it
        try:
            records = ArchiveIterator(handle)
            for record in records:
                if record.format != "warc":
                    raise WarcError(f"{path}: not a WARC file (the record at byte {records.get_record_offset()} "
                                    f"is not a WARC record)")
                if not _is_page(record):
                    found.other += 1
                    continue
                try:
                    at = _when(record)
                except (ValueError, TypeError):
                    found.refused.append(f"record at byte {records.get_record_offset()}: bad WARC-Date "
                                         f"{record.rec_headers.get_header('WARC-Date')!r}")
                    continue
                found.entries.append(Entry(records.get_record_offset(), at, _uri(record), record.rec_type))
        except WarcError:
            raise
        except Exception as exc:  # warcio's ArchiveLoadFailed, a damaged gzip member, a cut-off file
            raise _failure(path, exc) from None
    # A browser's capture holds the HTTP response and the rendered DOM (a resource) of one page at
    # one moment: the DOM is what was watched.
    rendered = {(e.url, e.captured_at) for e in found.entries if e.kind == "resource"}
    found.entries = [e for e in found.entries if e.kind == "resource" or (e.url, e.captured_at) not in rendered]
    found.entries.sort(key=lambda e: e.captured_at)
    return found


def captures(path: Path, entries: list[Entry], max_bytes: int):
    """Second pass: each entry's capture (Found), or a string saying why it was refused."""
    from warcio.archiveiterator import ArchiveIterator

    with _open(path) as handle:
        for entry in entries:
            where = f"{path.name} record at byte {entry.offset}"
            try:
                handle.seek(entry.offset)
                record = next(iter(ArchiveIterator(handle)))
                body = record.content_stream().read(max_bytes + 1)
            except Exception as exc:
                yield f"{where}: cannot be read ({type(exc).__name__}: {str(exc)[:200]})"
                continue
            if len(body) > max_bytes:
                yield f"{where}: body larger than max_bytes ({max_bytes:,} bytes)"
                continue
            headers = {}
            if record.rec_type == "response":
                headers = {k: record.http_headers.get_header(k) for k in KEPT_HEADERS
                           if record.http_headers.get_header(k) is not None}
                status = int(record.http_headers.get_statuscode())
            else:
                headers = {"content-type": record.rec_headers.get_header("Content-Type") or "text/html"}
                status = None
            record_id = record.rec_headers.get_header("WARC-Record-ID") or f"offset {entry.offset}"
            yield Found(captured_at=entry.captured_at, url=entry.url, body=body, http_status=status,
                        headers=headers, source="warc", source_url=f"{path.name} {record_id}")
