"""Trusted timestamps (RFC 3161) of a target's chain head: a time-stamping authority made here with
OpenSSL (tests/tsa.py) on loopback, tokens obtained after each check that records a version and on
demand, checked by `openssl ts -verify` against the authority's CA for the head they are stored
with, reported by `monitor verify`, shown in the web UI and carried in the WARC export; and an
authority answering garbage or a server error costs a clear error, never a check."""
from __future__ import annotations

import sqlite3

from warcio.archiveiterator import ArchiveIterator

import blog
import story
from tsa import SigningServer, TimestampAuthority

NAME = story.NAME


def head_of(workspace, name: str = NAME) -> str:
    return workspace.run("verify", name).stdout.split("chain head ")[1].split()[0]


def test_each_new_version_gets_a_token_that_openssl_verifies_for_the_head_it_covers(server, workspace, tmp_path):
    tsa = TimestampAuthority(tmp_path / "tsa")
    try:
        url = tsa.url("/tsr")
        story.tell(server, workspace, monitor_extra=f'timestamp_url = "{url}"')
        # One token per version a check recorded: both targets' first versions, then the three edits.
        assert len(tsa.queries) == 5
        head = head_of(workspace)
        checked = workspace.json("verify", NAME)[0]
        assert checked["ok"] and [t["version"] for t in checked["timestamps"]] == [4, 3, 2, 1]
        assert checked["timestamps"][0]["head"] == head and checked["timestamps"][0]["tsa"] == url
        said = workspace.run("verify", NAME).stdout
        assert f"trusted timestamp of v4's record {head}: {checked['timestamps'][0]['stamped_at']} by {url}" in said
        assert "(and 3 earlier heads)" in said

        # On demand: the head already has its token, so the TSA is not asked again; it is written out.
        token = tmp_path / "head.tsr"
        wrote = workspace.run("timestamp", NAME, "-o", str(token))
        assert f"{NAME}: chain head {head} (v4) already timestamped" in wrote.stdout
        assert f"openssl ts -verify -digest {head} -in {token}" in wrote.stdout
        assert len(tsa.queries) == 5
        verified = tsa.verify(head, token)
        assert verified.returncode == 0 and "Verification: OK" in verified.stdout, verified.stderr
        v3 = next(t for t in checked["timestamps"] if t["version"] == 3)["head"]
        assert tsa.verify(v3, token).returncode != 0  # the token vouches for its own head only

        # The export carries every token beside the version whose record it covers.
        export = tmp_path / "ice.warc.gz"
        workspace.run("export", NAME, "-o", str(export))
        tokens, notes = {}, []
        with open(export, "rb") as handle:
            for record in ArchiveIterator(handle, check_digests=True):
                kind = record.rec_headers.get_header("Content-Type")
                if kind == "application/timestamp-reply":
                    tokens[record.rec_headers.get_header("WARC-Target-URI")] = record.content_stream().read()
                elif record.rec_type == "metadata" and "urn:timestamp" in record.rec_headers.get_header("WARC-Target-URI"):
                    notes.append(record.content_stream().read().decode())
        assert tokens[f"urn:timestamp:sha256:{head}"] == token.read_bytes() and len(tokens) == 4
        assert any(f"chain-head: {head}" in n and "version: 4" in n and f"tsa: {url}" in n for n in notes)

        # The web UI shows it beside the chain head and on the version's page, and serves the token.
        ui = story.UI(workspace)
        try:
            page = ui.get(f"/targets/{NAME}").text
            assert head in page and "trusted timestamp" in page and f"/timestamps/{head}.tsr" in page
            assert "Trusted timestamp" in ui.get(f"/targets/{NAME}/versions/4").text
            assert ui.get(f"/targets/{NAME}/timestamps/{head}.tsr").content == token.read_bytes()
            assert ui.get(f"/targets/{NAME}/timestamps/{'0' * 64}.tsr").status_code == 404
            # The JSON API and `history --json` give each version's record digest and its token's
            # address, where the token served is the one openssl verified.
            for versions in (ui.get(f"/api/targets/{NAME}/versions").json(), workspace.json("history", NAME)["versions"]):
                newest = next(v for v in versions if v["version"] == 4)
                assert newest["record_sha256"] == head and newest["timestamp"]["tsa_url"] == url
                assert ui.get(newest["timestamp"]["token"]).content == token.read_bytes()
                assert all(v["timestamp"] and v["record_sha256"] == t["head"] for v in versions
                           for t in checked["timestamps"] if t["version"] == v["version"])
        finally:
            ui.close()
    finally:
        tsa.close()

    # A history rewritten after it was timestamped: v2's capture time moved and the whole chain
    # re-linked, as someone with the database in hand would. The links agree again; the tokens do not.
    from sqlalchemy import create_engine

    from monitor import chain

    db = sqlite3.connect(workspace.path / "monitor.db")
    with db:
        db.execute("UPDATE versions SET first_seen = '2018-06-18 09:50:00.000000' WHERE seq = 2 "
                   "AND target_id = (SELECT id FROM targets WHERE name = ?)", (NAME,))
        (target_id,) = db.execute("SELECT id FROM targets WHERE name = ?", (NAME,)).fetchone()
    db.close()
    engine = create_engine(f"sqlite:///{workspace.path / 'monitor.db'}")
    with engine.begin() as conn:
        chain.relink(conn, target_id)
    engine.dispose()
    broken = workspace.run("verify", NAME, expect=1)
    assert f"{NAME}: BROKEN at the timestamp of" in broken.stdout
    assert "that head is no longer in the chain, and nothing was imported since" in broken.stdout


def test_a_tsa_answering_an_error_or_garbage_costs_a_clear_error_and_never_a_check(server, workspace, tmp_path):
    tsa = TimestampAuthority(tmp_path / "tsa")
    try:
        url = tsa.url("/tsr")
        tsa.mode = "500"
        server.set("/post", blog.post(seed=0))
        workspace.write_config(f"""
[monitor]
retries = 0
calibrate = false
alert_wait = "0s"
timestamp_url = "{url}"

[[targets]]
name = "{NAME}"
url = "{server.url('/post')}"
selector = "article .entry-content"
""")
        checked = workspace.run("check")  # the check is recorded; the timestamp waits in the outbox
        assert "checked 1 target: 1 first" in checked.stdout, checked.output
        assert len(tsa.queries) == 1
        job = [a for a in workspace.json("alerts") if a["channel"] == "timestamp"]
        assert [a["state"] for a in job] == ["pending"]
        assert f"{NAME}: TSA {url}: HTTP 500" in job[0]["last_error"]

        refused = workspace.run("timestamp", NAME, expect=1)
        assert f"error: {NAME}: TSA {url}: HTTP 500" in refused.output
        tsa.mode = "garbage"
        refused = workspace.run("timestamp", NAME, expect=1)
        assert f"error: {NAME}: TSA {url}: not a timestamp reply" in refused.output
        # Nothing was stored, nothing damaged: the history verifies, with no timestamp.
        said = workspace.run("verify", NAME).stdout
        assert f"{NAME}: intact: 1 version" in said and "timestamp" not in said
        assert workspace.json("verify", NAME)[0]["timestamps"] == []

        tsa.mode = "ok"
        head = head_of(workspace)
        done = workspace.json("timestamp", NAME)
        assert [(d["head"], d["version"], d["new"], d["tsa"]) for d in done] == [(head, 1, True, url)]
        assert f"trusted timestamp of v1's record {head}" in workspace.run("verify", NAME).stdout
    finally:
        tsa.close()
    # Without an authority configured, a head that has no token yet cannot get one: said so.
    server.set("/post", blog.post(blog.PARAGRAPHS[:-1], seed=1))
    workspace.write_config(workspace.config.read_text().replace(f'timestamp_url = "{url}"\n', ""))
    workspace.run("check")
    missing = workspace.run("timestamp", NAME, "-o", str(tmp_path / "x.tsr"), expect=1)
    assert f"{NAME}: its chain head (v2) has no timestamp and no [monitor] timestamp_url is set" in missing.output
    assert not (tmp_path / "x.tsr").exists()


# ---- WACZ signing -----------------------------------------------------------------------------

def test_a_wacz_export_is_signed_and_the_wacz_package_verifies_the_signature(server, workspace, tmp_path,
                                                                             monkeypatch):
    import hashlib
    import json
    import subprocess
    import sys
    import zipfile

    import httpx

    tsa = TimestampAuthority(tmp_path / "tsa")
    signer = SigningServer(tmp_path / "authsign", tsa)
    try:
        monkeypatch.setenv("WACZ_TOKEN", signer.TOKEN)
        story.tell(server, workspace, monitor_extra=f'wacz_signing_url = "{signer.url("/sign")}"\n'
                                                    'wacz_signing_token = "${WACZ_TOKEN}"')
        out = tmp_path / "ice.wacz"
        workspace.run("export", NAME, "-o", str(out))
        with zipfile.ZipFile(out) as package:
            digest = json.loads(package.read("datapackage-digest.json"))
            assert digest["hash"] == "sha256:" + hashlib.sha256(package.read("datapackage.json")).hexdigest()
        signed = digest["signedData"]
        assert signed["hash"] == digest["hash"] and signed["domain"] == SigningServer.DOMAIN
        # The wacz package's own validation, signature included, through the signer's /verify.
        checked = subprocess.run([sys.executable, "-m", "wacz", "validate", "-f", str(out), "--verify-auth",
                                  "--verifier-url", signer.url("/verify")], capture_output=True, text=True, timeout=120)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert f"Successfully verified signature via: {signer.url('/verify')}" in checked.stdout
        # The signature covers that hash only: the same signature over another digest is refused.
        forged = httpx.post(signer.url("/verify"), json={**signed, "hash": "sha256:" + "0" * 64}, timeout=30)
        assert forged.status_code == 400

        # A signing server that refuses (a wrong token): the export fails naming it; nothing written.
        monkeypatch.setenv("WACZ_TOKEN", "not-the-token")
        refused = workspace.run("export", NAME, "-o", str(tmp_path / "unsigned.wacz"), expect=1)
        assert f"the signing server {signer.url('/sign')} did not sign it" in refused.output
        assert "Invalid auth token" in refused.output
        assert "not-the-token" not in refused.output
        assert not (tmp_path / "unsigned.wacz").exists()
    finally:
        signer.close()
        tsa.close()
