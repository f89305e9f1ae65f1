"""Evidence: the stored history exported as WARC/WACZ and read back by the archive community's own
tools (warcio, the wacz package, pywb), WARC files from warcio and from Debian's wget imported
into a fresh database, the Wayback Machine's history rebuilt from a loopback CDX server, and the
hash chain catching an altered capture or row. All through the real `monitor` command."""
from __future__ import annotations

import hashlib
import json
import sqlite3
import subprocess
import sys
from io import BytesIO
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
from warcio.archiveiterator import ArchiveIterator
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

import blog
import story
from conftest import LoopbackServer, Workspace, free_port, wait_for

NAME = story.NAME
ORIGINAL = "https://blogs.microsoft.com/blog/2018/01/24/federal-agencies-continue-to-advance-capabilities-with-azure-government/"
# The ICE post as the archive holds it: January, the Monday-morning removal, the restore.
HISTORY_2018 = [("20180124170200", blog.PARAGRAPHS, 0), ("20180618095000", story.WITHOUT_ICE, 1),
                ("20180618131000", blog.PARAGRAPHS, 2)]
WAYBACK_CONFIG = """
[monitor]
retries = 0
calibrate = false
wayback_cdx = "{cdx}"
wayback_delay = "0s"

[[targets]]
name = "{name}"
url = "{url}"
selector = "article .entry-content"
"""


def kinds(history) -> list[str]:
    return [c["kind"] for c in reversed(history["changes"])]


def versions(history) -> list[tuple]:
    return [(v["first_seen"], v["raw_sha256"], v["text_sha256"]) for v in reversed(history["versions"])]


def read_warc(path: Path) -> list:
    """Every record of a WARC with its payload, digests checked by warcio itself."""
    out = []
    with open(path, "rb") as handle:
        for record in ArchiveIterator(handle, check_digests=True):
            body = record.content_stream().read()
            out.append((record, body))
            assert record.digest_checker.passed is not False, (record.rec_type, record.digest_checker.problems)
    return out


def ice_2018_warc(path: Path, url: str, shuffled: bool = False) -> None:
    """The 2018 history as a warcio-written WARC (as Webrecorder or any crawler writes one): a
    request and a response per capture, with their original dates."""
    records = []
    for stamp, paragraphs, seed in HISTORY_2018:
        body = blog.post(paragraphs, seed=seed).encode("utf-8")
        date = f"{stamp[:4]}-{stamp[4:6]}-{stamp[6:8]}T{stamp[8:10]}:{stamp[10:12]}:{stamp[12:]}Z"
        records.append((body, date))
    if shuffled:
        records = [records[2], records[0], records[1]]
    with open(path, "wb") as handle:
        writer = WARCWriter(handle, gzip=True)
        for body, date in records:
            headers = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8"),
                                                  ("Content-Length", str(len(body)))], protocol="HTTP/1.1")
            writer.write_record(writer.create_warc_record(url, "response", payload=BytesIO(body), length=len(body),
                                                          http_headers=headers,
                                                          warc_headers_dict={"WARC-Date": date}))


# ---- export ------------------------------------------------------------------------------------

def test_export_is_a_warc_whose_digests_verify_and_whose_dates_are_the_capture_times(server, workspace):
    history = story.tell(server, workspace)
    out = workspace.path / "ice.warc.gz"
    result = workspace.run("export", NAME, "-o", str(out))
    assert f"wrote {out}: 4 captures of 1 target" in result.stdout

    records = read_warc(out)
    info = records[0][0]
    assert info.rec_type == "warcinfo" and b"software: monitor/" in records[0][1]
    assert all(r.rec_headers.protocol == "WARC/1.1" for r, _ in records)
    responses = [(r, body) for r, body in records if r.rec_type == "response"]
    requests = [r for r, _ in records if r.rec_type == "request"]
    stored = list(reversed(history["versions"]))
    assert len(responses) == len(requests) == len(stored) == 4
    for (record, body), version in zip(responses, stored):
        assert record.rec_headers.get_header("WARC-Date")[:19] + "Z" == version["first_seen"]
        assert record.rec_headers.get_header("WARC-Target-URI") == server.url("/post")
        assert record.http_headers.statusline == "200 OK"
        assert record.http_headers.get_header("Content-Type") == "text/html; charset=utf-8"
        assert record.rec_headers.get_header("WARC-Payload-Digest").startswith("sha1:")
        assert record.rec_headers.get_header("WARC-Block-Digest")
        assert hashlib.sha256(body).hexdigest() == version["raw_sha256"]
    assert (blog.ICE.encode() in responses[0][1], blog.ICE.encode() in responses[1][1]) == (True, False)
    # Each request record is concurrent to its response; each metadata record names its version.
    ids = {r.rec_headers.get_header("WARC-Record-ID") for r, _ in responses}
    assert {r.rec_headers.get_header("WARC-Concurrent-To") for r in requests} == ids
    metadata = [body.decode() for r, body in records if r.rec_type == "metadata"]
    assert [f"version: {v['version']}" in m and f"text-sha256: {v['text_sha256']}" in m
            for m, v in zip(metadata, stored)] == [True] * 4

    # A part of the history, and every target at once.
    part = workspace.path / "part.warc.gz"
    workspace.run("export", NAME, "--from", "2", "--to", "3", "-o", str(part))
    assert [r.rec_headers.get_header("WARC-Date")[:19] + "Z" for r, _ in read_warc(part) if r.rec_type == "response"] \
        == [stored[1]["first_seen"], stored[2]["first_seen"]]
    everything = workspace.path / "all.warc.gz"
    assert "5 captures of 2 targets" in workspace.run("export", "--all", "-o", str(everything)).stdout
    bad = workspace.run("export", NAME, "--from", "9", "-o", str(part), expect=1)
    assert f"{NAME} has no version 9" in bad.output


def test_wacz_export_passes_the_wacz_packages_own_validation(server, workspace):
    story.tell(server, workspace)
    out = workspace.path / "ice.wacz"
    workspace.run("export", NAME, "-o", str(out))
    checked = subprocess.run([sys.executable, "-m", "wacz", "validate", "-f", str(out)], capture_output=True,
                             text=True, timeout=120)
    assert checked.returncode == 0 and "Validation succeeded" in checked.stdout, checked.stdout + checked.stderr
    import zipfile

    with zipfile.ZipFile(out) as package:
        names = set(package.namelist())
        assert {"datapackage.json", "datapackage-digest.json", "pages/pages.jsonl", "archive/ice.warc.gz"} <= names
        resources = json.loads(package.read("datapackage.json"))["resources"]
        for resource in resources:  # every file's digest, checked here too
            assert resource["hash"] == "sha256:" + hashlib.sha256(package.read(resource["path"])).hexdigest()
        assert any(NAME in line for line in package.read("pages/pages.jsonl").decode().splitlines())


# ---- import ------------------------------------------------------------------------------------

def test_an_export_imported_into_a_fresh_database_gives_the_same_history_and_chain(server, workspace, tmp_path):
    history = story.tell(server, workspace)
    head = workspace.run("verify", NAME).stdout.split("chain head ")[1].strip()
    out = workspace.path / "ice.warc.gz"
    workspace.run("export", NAME, "-o", str(out))

    fresh = Workspace(tmp_path / "fresh")
    fresh.path.mkdir()
    fresh.write_config(story.config(server))
    result = fresh.run("import-warc", str(out))
    assert f"{NAME}: 4 new versions" in result.stdout and "first → removed → restored → edited" in result.stdout
    again = fresh.json("history", NAME)
    assert kinds(again) == kinds(history) == ["first", "removed", "restored", "edited"]
    assert versions(again) == versions(history)
    assert fresh.run("verify", NAME).stdout.split("chain head ")[1].strip() == head
    # Importing the same file again adds nothing.
    assert f"{NAME}: 0 new versions" in fresh.run("import-warc", str(out)).stdout
    assert versions(fresh.json("history", NAME)) == versions(history)


def test_a_warcio_written_warc_rebuilds_the_2018_history_with_its_dates(workspace):
    workspace.write_config(WAYBACK_CONFIG.format(cdx="http://127.0.0.1:9/cdx", name=NAME, url=ORIGINAL))
    warc = workspace.path / "webrecorder.warc.gz"
    ice_2018_warc(warc, ORIGINAL, shuffled=True)  # records out of date order: placed by capture time
    workspace.run("import-warc", str(warc))
    h = workspace.json("history", NAME)
    assert kinds(h) == ["first", "removed", "restored"]
    assert [v["first_seen"] for v in reversed(h["versions"])] == [
        "2018-01-24T17:02:00Z", "2018-06-18T09:50:00Z", "2018-06-18T13:10:00Z"]
    restore = h["changes"][0]
    assert restore["restored_version"] == 1 and "first seen 2018-01-24 17:02" in restore["summary"]
    assert any(blog.ICE in p["removed"] for p in h["changes"][1]["passages"])
    assert all(v["source"] == "warc" for v in h["versions"])
    assert not h["events"], "imported history is not news: no alerts"
    # A file that is not a WARC is refused by name; nothing stored changes.
    junk = workspace.path / "junk.warc.gz"
    junk.write_bytes(b"not a warc at all\n" * 10)
    refused = workspace.run("import-warc", str(junk), expect=1)
    assert f"{junk}: not a WARC file" in refused.output
    assert versions(workspace.json("history", NAME)) == versions(h)


def test_wget_warcs_import_like_the_live_checks_of_the_same_pages(server, workspace, tmp_path):
    live = story.tell(server, workspace)
    fresh = Workspace(tmp_path / "fresh")
    fresh.path.mkdir()
    fresh.write_config(story.config(server))
    steps = [(blog.PARAGRAPHS, 0), (story.WITHOUT_ICE, 1), (blog.PARAGRAPHS, 2), (story.EDITED, 3)]
    for i, (paragraphs, seed) in enumerate(steps):  # the same pages the live checks saw
        server.set("/post", blog.post(paragraphs, seed=seed))
        ran = subprocess.run(["wget", "-q", "--warc-file", str(fresh.path / f"wget-{i}"), "-O", "/dev/null",
                              server.url("/post")], capture_output=True, text=True, timeout=30)
        assert ran.returncode == 0, ran.stderr
    for i in range(len(steps)):
        fresh.run("import-warc", str(fresh.path / f"wget-{i}.warc.gz"))
    imported = fresh.json("history", NAME)
    assert kinds(imported) == kinds(live)
    assert [v[1:] for v in versions(imported)] == [v[1:] for v in versions(live)]  # same bytes, same texts
    fresh.run("verify", NAME)


# ---- pywb ----------------------------------------------------------------------------------------

def test_pywb_replays_the_export_before_and_after_the_removal(workspace, tmp_path):
    workspace.write_config(WAYBACK_CONFIG.format(cdx="http://127.0.0.1:9/cdx", name=NAME, url=ORIGINAL))
    ice_2018_warc(workspace.path / "in.warc.gz", ORIGINAL)
    workspace.run("import-warc", str(workspace.path / "in.warc.gz"))
    out = tmp_path / "ice.warc.gz"
    workspace.run("export", NAME, "-o", str(out))

    root = tmp_path / "pywb"
    root.mkdir()
    tools = Path(sys.executable).parent
    for args in (["init", "ice"], ["add", "ice", str(out)]):
        made = subprocess.run([str(tools / "wb-manager"), *args], cwd=root, capture_output=True, text=True, timeout=60)
        assert made.returncode == 0, made.stderr
    port = free_port()
    wayback = subprocess.Popen([str(tools / "wayback"), "-p", str(port), "-b", "127.0.0.1", "-d", str(root)],
                               cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}/ice"

        def up():
            try:
                return httpx.get(f"{base}/", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(up, timeout=30)
        january = httpx.get(f"{base}/20180124170200id_/{ORIGINAL}", timeout=10)
        removed = httpx.get(f"{base}/20180618095000mp_/{ORIGINAL}", timeout=10)
        restored = httpx.get(f"{base}/20180618131000mp_/{ORIGINAL}", timeout=10)
    finally:
        wayback.terminate()
        wayback.wait(10)
    assert january.status_code == removed.status_code == restored.status_code == 200
    assert blog.ICE in january.text and blog.ICE in restored.text
    assert blog.ICE not in removed.text and blog.PARAGRAPHS[1] in removed.text
    assert removed.headers.get("memento-datetime") == "Mon, 18 Jun 2018 09:50:00 GMT"


# ---- the Wayback Machine -------------------------------------------------------------------------

def answer(handler, status: int, content_type: str, body: bytes, headers: dict | None = None) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    for key, value in (headers or {}).items():
        handler.send_header(key, value)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


class WaybackServer(LoopbackServer):
    """The CDX API and `id_` captures as web.archive.org answers them: JSON rows under a header row,
    filter and collapse applied, at most PAGE rows a page with the resume key after an empty row."""

    PAGE = 2

    def __init__(self, captures: list[tuple[str, str, str, str, bytes]]):
        from http.server import BaseHTTPRequestHandler

        self.captures = captures  # (timestamp, mimetype, status, digest, body)
        self.requests: list[str] = []
        self.refuse_once: set[str] = set()  # timestamps answered 429 the first time
        archive = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                archive.requests.append(self.path)
                if self.path.startswith("/cdx/search/cdx?"):
                    return answer(self, 200, "application/json", archive.listing(parse_qs(urlsplit(self.path).query)))
                stamp = self.path.split("/")[2].removesuffix("id_")
                found = [c for c in archive.captures if c[0] == stamp]
                if stamp in archive.refuse_once:
                    archive.refuse_once.discard(stamp)
                    return answer(self, 429, "text/plain", b"slow down", {"Retry-After": "7200"})
                if not found or not self.path.split("/")[2].endswith("id_"):
                    return answer(self, 404, "text/plain", b"not archived")
                answer(self, 200, found[0][1], found[0][4])

        self._serve(Handler)

    def listing(self, query: dict) -> bytes:
        assert query["output"] == ["json"] and query["filter"] == ["statuscode:200"]
        assert query["collapse"] == ["digest"] and query["showResumeKey"] == ["true"]
        assert query["url"] == [ORIGINAL]
        rows, last = [], None
        for stamp, mimetype, status, digest, _ in self.captures:
            if status != "200" or digest == last or not (query["from"][0] <= stamp <= query["to"][0] + "235959"):
                last = digest
                continue
            last = digest
            rows.append(["com,microsoft,blogs)/blog/2018/01/24", stamp, ORIGINAL, mimetype, status, digest, "9999"])
        start = int(query.get("resumeKey", ["0"])[0])
        page = [["urlkey", "timestamp", "original", "mimetype", "statuscode", "digest", "length"]]
        page += rows[start:start + self.PAGE]
        if start + self.PAGE < len(rows):
            page += [[], [str(start + self.PAGE)]]
        return json.dumps(page).encode()


def archive_of_2018() -> list[tuple]:
    captures = []
    for stamp, paragraphs, seed in HISTORY_2018:
        body = blog.post(paragraphs, seed=seed).encode()
        captures.append((stamp, "text/html", "200", hashlib.sha1(body).hexdigest(), body))
    # What the real index also holds: an identical re-capture (collapsed), an error answer
    # (filtered), a revisit record, and the chrome-only re-capture of the restored page.
    captures.insert(1, (captures[0][0][:8] + "180000", "text/html", "200", captures[0][3], captures[0][4]))
    captures.insert(2, ("20180301000000", "text/html", "503", "X" * 40, b"down"))
    captures.append(("20180619000000", "warc/revisit", "200", "Y" * 40, b""))
    restored_again = blog.post(blog.PARAGRAPHS, seed=7).encode()
    captures.append(("20180620000000", "text/html", "200", hashlib.sha1(restored_again).hexdigest(), restored_again))
    return captures


def test_import_wayback_rebuilds_first_removed_restored_with_the_original_dates(workspace):
    archive = WaybackServer(archive_of_2018())
    try:
        workspace.write_config(WAYBACK_CONFIG.format(cdx=archive.url("/cdx/search/cdx"), name=NAME, url=ORIGINAL))
        archive.refuse_once.add("20180618131000")  # the archive asks us to back off: the import stops
        stopped = workspace.run("import-wayback", NAME, "--from", "2018-01-01", "--to", "2018-07-01", expect=1)
        assert "stopped early: the archive asked us to wait" in stopped.output and "run the same command again" in stopped.output
        assert kinds(workspace.json("history", NAME)) == ["first", "removed"]
        fetched_before = [p for p in archive.requests if p.startswith("/web/")]

        result = workspace.run("import-wayback", NAME, "--from", "2018-01-01", "--to", "2018-07-01")
        fetched = [p for p in archive.requests if p.startswith("/web/")][len(fetched_before):]
        assert fetched == [f"/web/20180618131000id_/{ORIGINAL}", f"/web/20180620000000id_/{ORIGINAL}"], \
            "a resumed import fetches only what it has not imported yet"
        assert "4 captures listed" in result.stdout
        cdx_pages = [p for p in archive.requests if p.startswith("/cdx/")]
        assert any("resumeKey=2" in p for p in cdx_pages), "the listing is read page by page"
    finally:
        archive.close()
    h = workspace.json("history", NAME)
    assert kinds(h) == ["first", "removed", "restored"]
    assert [(v["version"], v["first_seen"], v["times_seen"]) for v in reversed(h["versions"])] == [
        (1, "2018-01-24T17:02:00Z", 1), (2, "2018-06-18T09:50:00Z", 1), (3, "2018-06-18T13:10:00Z", 2)]
    assert h["versions"][0]["last_seen"] == "2018-06-20T00:00:00Z"  # the chrome-only re-capture: a sighting
    assert all(v["source"] == "wayback" and "/web/2018" in v["source_url"] for v in h["versions"])
    assert "restored version 1 (first seen 2018-01-24 17:02 UTC)" in h["changes"][0]["summary"]
    text = workspace.run("history", NAME).stdout
    assert f"imported from {archive.url('/web/20180124170200id_/')}{ORIGINAL}" in text
    assert "intact: 3 versions" in workspace.run("verify", NAME).stdout

    ui = story.UI(workspace)
    try:
        page = ui.get(f"/targets/{NAME}").text
        version = ui.get(f"/targets/{NAME}/versions/2").text
    finally:
        ui.close()
    assert page.count("imported from the Wayback Machine") == 3
    assert "Imported from" in version and "20180618095000id_" in version
    assert h["versions"][1]["chain_previous"] in version and "Hash chain" in version


# ---- verify --------------------------------------------------------------------------------------

def test_verify_names_the_version_whose_capture_or_row_was_altered(server, workspace):
    history = story.tell(server, workspace)
    export = workspace.path / "before.warc.gz"
    workspace.run("export", NAME, "-o", str(export))
    ok = workspace.run("verify")
    assert f"{NAME}: intact: 4 versions, 8 files re-hashed" in ok.stdout and "press-release: intact" in ok.stdout

    # A capture file altered on disk (same name, other bytes).
    v2 = history["versions"][2]
    assert v2["version"] == 2
    path = workspace.path / "snapshots" / v2["raw_sha256"][:2] / f"{v2['raw_sha256']}.zst"
    original = path.read_bytes()
    import zstandard

    path.write_bytes(zstandard.ZstdCompressor().compress(blog.post(seed=9).encode()))
    broken = workspace.run("verify", NAME, expect=1)
    assert f"{NAME}: BROKEN at v2: its capture file fails" in broken.stdout
    assert "does not match its name" in broken.stdout and f"1 target failed verification: {NAME}" in broken.output
    path.write_bytes(original)
    workspace.run("verify", NAME)

    # A row altered in the database: v2's capture time moved by an hour.
    db = sqlite3.connect(workspace.path / "monitor.db")
    (when,) = db.execute("SELECT first_seen FROM versions WHERE seq = 2").fetchone()
    with db:
        db.execute("UPDATE versions SET first_seen = ? WHERE seq = 2", ("2018-06-18 09:50:00.000000",))
    broken = workspace.run("verify", NAME, expect=1)
    assert f"{NAME}: BROKEN at v3: link broken" in broken.stdout and "v2 or v3 was altered" in broken.stdout
    # An import would re-link the chain and hide that: refused.
    refused = workspace.run("import-warc", str(export), expect=1)
    assert f"{NAME}: its hash chain is broken (v3: link broken" in refused.output
    with db:
        db.execute("UPDATE versions SET first_seen = ? WHERE seq = 2", (when,))
    workspace.run("verify", NAME)

    # The newest version altered (no version after it): the target's chain head catches it.
    with db:
        db.execute("UPDATE versions SET text_sha = raw_sha WHERE seq = 4")
    broken = workspace.run("verify", NAME, expect=1)
    assert f"{NAME}: BROKEN at v4: the target's chain head records" in broken.stdout
    db.close()


def test_an_upgraded_database_has_its_existing_versions_chained(server, workspace):
    import sqlalchemy
    from alembic import command

    from monitor import config as config_module, migrate

    story.tell(server, workspace)
    head = workspace.run("verify", NAME).stdout.split("chain head ")[1].split()[0]
    # SQLite rebuilds a table to drop a column: without foreign key enforcement, as Alembic needs.
    engine = sqlalchemy.create_engine(config_module.load(workspace.config).database_url)
    command.downgrade(migrate.alembic_config(engine), "0006")  # as a database from before the hash chain
    assert "previous_sha" not in {c["name"] for c in sqlalchemy.inspect(engine).get_columns("versions")}
    migrate.upgrade(engine)
    engine.dispose()
    assert workspace.run("verify", NAME).stdout.split("chain head ")[1].split()[0] == head


# ---- Save Page Now -------------------------------------------------------------------------------

class SavePageNowServer(LoopbackServer):
    """SPN2 as web.archive.org answers it: POST /save names a capture job (after a 429 the first
    time: too many captures), GET /save/status/JOB says it succeeded."""

    def __init__(self):
        from http.server import BaseHTTPRequestHandler

        self.posts: list[dict] = []
        self.polls: list[str] = []
        spn = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                form = parse_qs(self.rfile.read(int(self.headers.get("Content-Length", 0))).decode())
                status = 429 if not spn.posts else 200
                spn.posts.append({"status": status, "url": form.get("url", [""])[0],
                                  "authorization": self.headers.get("Authorization")})
                if status == 429:
                    return self.answer(429, {"message": "You have already reached the limit"}, {"Retry-After": "1"})
                self.answer(200, {"url": form["url"][0], "job_id": f"spn2-{len(spn.posts):04d}"})

            def do_GET(self):
                job = self.path.rsplit("/", 1)[-1]
                spn.polls.append(job)
                self.answer(200, {"status": "success", "job_id": job, "timestamp": f"2026010100{len(spn.polls):04d}",
                                  "original_url": spn.posts[int(job[5:]) - 1]["url"]})

            def answer(self, status, document, headers=None):
                answer(self, status, "application/json", json.dumps(document).encode(), headers)

        self._serve(Handler)


def test_save_page_now_is_asked_once_per_change_through_the_outbox_and_the_copy_is_stored(server, workspace):
    spn = SavePageNowServer()
    try:
        extra = (f'save_page_now = true\nsave_page_now_url = "{spn.url("/save")}"\n'
                 'save_page_now_key = "ACCESS:SECRET"\nalert_wait = "10s"')
        history = story.tell(server, workspace, monitor_extra=extra)
    finally:
        spn.close()
    # The first version is not an edit; each of the three edits asked for one capture. The 429
    # paused the channel and the same request went again once the Retry-After was over.
    assert [p["status"] for p in spn.posts] == [429, 200, 200, 200]
    assert all(p["url"] == server.url("/post") and p["authorization"] == "LOW ACCESS:SECRET" for p in spn.posts)
    assert spn.polls == ["spn2-0002", "spn2-0003", "spn2-0004"]
    removed = workspace.json("history", NAME)["changes"][2]
    assert removed["kind"] == "removed"
    assert removed["archive_url"] == f"{spn.url('/web/')}202601010000" + "01/" + server.url("/post")
    assert history["by_kind"]["first"]["archive_url"] is None
    outbox = workspace.json("alerts")
    assert [a["state"] for a in outbox if a["channel"] == "save-page-now"] == ["sent"] * 3
    assert all("SECRET" not in (a["last_error"] or "") for a in outbox)


# ---- hostile evidence inputs ---------------------------------------------------------------------

def test_hostile_warcs_and_cdx_answers_cost_a_clear_error_and_damage_nothing(server, workspace):
    workspace.write_config(WAYBACK_CONFIG.format(cdx="http://127.0.0.1:9/cdx", name=NAME, url=ORIGINAL)
                           .replace("retries = 0", "retries = 0\nmax_bytes = 200000"))
    good = workspace.path / "good.warc.gz"
    ice_2018_warc(good, ORIGINAL)
    workspace.run("import-warc", str(good))
    before = versions(workspace.json("history", NAME))

    # A record far larger than max_bytes (a gzip member that inflates to 50 MB): refused by name.
    big = workspace.path / "big.warc.gz"
    with open(big, "wb") as handle:
        writer = WARCWriter(handle, gzip=True)
        body = b"<html><body><p>" + b"A" * 50_000_000 + b"</p></body></html>"
        headers = StatusAndHeaders("200 OK", [("Content-Type", "text/html")], protocol="HTTP/1.1")
        writer.write_record(writer.create_warc_record(ORIGINAL, "response", payload=BytesIO(body),
                                                      length=len(body), http_headers=headers,
                                                      warc_headers_dict={"WARC-Date": "2018-07-01T00:00:00Z"}))
    assert big.stat().st_size < 1_000_000
    out = workspace.run("import-warc", str(big), expect=1).output
    assert "body larger than max_bytes (200,000 bytes)" in out and "big.warc.gz record at byte" in out
    assert f"{big}: 1 record refused" in out
    # A WARC cut off in the middle of a record: the records before the cut are already stored, the
    # cut one is refused naming the file and the record.
    cut = workspace.path / "cut.warc.gz"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    refused = workspace.run("import-warc", str(cut), expect=1)
    assert "refused cut.warc.gz <urn:uuid:" in refused.output, refused.output
    assert "everything else in it was imported" in refused.output
    assert versions(workspace.json("history", NAME)) == before

    # CDX answers that are not what the API sends: each a clear error naming the CDX; nothing stored.
    for body in (b"<html>not json</html>", b'{"rows": 1}', b'[["urlkey","timestamp"],["x","y"]]',
                 json.dumps([["urlkey", "timestamp", "original", "mimetype", "statuscode", "digest", "length"],
                             ["k", "2018-13-99", ORIGINAL, "text/html", "200", "d", "1"]]).encode(),
                 b"[" + b'["a"],' * 200_000 + b"[]]"):
        server.set("/cdx", body, headers={"Content-Type": "application/json"})
        workspace.write_config(WAYBACK_CONFIG.format(cdx=server.url("/cdx"), name=NAME, url=ORIGINAL)
                               .replace("retries = 0", "retries = 0\nmax_bytes = 200000"))
        failed = workspace.run("import-wayback", NAME, expect=1)
        assert server.url("/cdx") in failed.output and "CDX" in failed.output, failed.output
        assert versions(workspace.json("history", NAME)) == before
    assert "intact: 3 versions" in workspace.run("verify", NAME).stdout
