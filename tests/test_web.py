"""The web UI, JSON API and feeds as a reviewer and their tools meet them: the real server on
loopback over a history built by the real pipeline. Pages, escaping, login and CSRF, the
refusal to serve a non-loopback address without a password, the API against its OpenAPI
document (and the CLI's --json against the same schema), the feeds through feedparser."""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from html import unescape
from urllib.parse import urlsplit

import feedparser
import httpx
import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate as validate_openapi

import blog
import story
from conftest import ROOT, free_port, wait_for
from monitor.web import render
from monitor.web.auth import LOGIN_FAILURES

NAME = story.NAME
PASSWORD = "correct horse battery"
TOKEN = "tok-0123456789abcdef"


@pytest.fixture
def told(server, workspace):
    return story.tell(server, workspace)


@pytest.fixture
def ui_factory(workspace):
    started = []

    def start():
        ui = story.UI(workspace)
        started.append(ui)
        return ui

    yield start
    for ui in started:
        ui.close()


@pytest.fixture
def ui(told, ui_factory):
    return ui_factory()


def text_of(html: str) -> str:
    """What a reader sees: tags out, entities decoded, whitespace collapsed."""
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def struck(html: str) -> str:
    """The text a page shows struck through (removed)."""
    return text_of(" ".join(re.findall(r"<del>(.*?)</del>", html, re.S)))


def underlined(html: str) -> str:
    """The text a page shows as added."""
    return text_of(" ".join(re.findall(r"<ins>(.*?)</ins>", html, re.S)))


# ---- pages ----------------------------------------------------------------------------------------

def test_dashboard_shows_each_target_at_a_glance_and_filters_by_text_and_tag(ui, told):
    page = ui.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    seen = text_of(page.text)
    assert "2 targets" in seen and NAME in seen and "press-release" in seen
    assert told["by_kind"]["edited"]["summary"] in seen  # the post's last change, at a glance
    assert f'href="/changes/{told["by_kind"]["edited"]["id"]}"' in page.text

    assert listed(page.text) == [NAME, "press-release"]
    assert listed(ui.get("/", params={"tag": "acme"}).text) == ["press-release"]
    assert listed(ui.get("/", params={"q": "ICE-POST"}).text) == [NAME]
    assert listed(ui.get("/", params={"q": "127.0.0.1", "tag": "government"}).text) == [NAME]
    assert listed(ui.get("/", params={"status": "error"}).text) == []
    assert "No target matches" in ui.get("/", params={"q": "nothing like this"}).text


def listed(html: str) -> list[str]:
    """The targets the dashboard's table lists."""
    return re.findall(r'<td class="name">\s*<a href="/targets/([^"]+)"', html)


def alternate(kind: str, title: str, href: str) -> str:
    return f'<link rel="alternate" type="application/{kind}+xml" title="{title}" href="{href}">'


def test_every_page_advertises_its_feeds(ui, told):
    change_id = told["by_kind"]["removed"]["id"]
    for path in ("/", "/changes", f"/targets/{NAME}", f"/changes/{change_id}", f"/targets/{NAME}/versions/1",
                 f"/targets/{NAME}/compare?from=1&to=3", "/search?q=cloud", "/alerts"):
        html = ui.get(path).text
        for kind in ("atom", "rss"):
            assert alternate(kind, f"All changes ({kind.upper()})", f"/changes.{kind}") in html, (path, kind)
    target_page = ui.get(f"/targets/{NAME}").text
    for kind in ("atom", "rss"):
        assert alternate(kind, f"Changes to {NAME} ({kind.upper()})", f"/targets/{NAME}/changes.{kind}") in target_page


def test_target_page_timeline_links_every_version_and_change(ui, told):
    page = ui.get(f"/targets/{NAME}").text
    for kind in ("removed", "restored", "edited"):
        change = told["by_kind"][kind]
        assert f'href="/changes/{change["id"]}"' in page
        assert change["summary"].replace("'", "&#39;") in page
    for seq in (1, 2, 3, 4):
        assert f'href="/targets/{NAME}/versions/{seq}"' in page
    # The compare form starts on the latest change: from v3 to v4.
    assert re.search(r'name="from" value="3"[^>]*checked', page) and re.search(r'name="to" value="4"[^>]*checked', page)
    assert "same text as v1" in text_of(page)  # the restore names the version it went back to


def test_target_timeline_pages_keep_failed_checks_between_their_versions(server, workspace, told, ui_factory):
    server.set("/post", "<html><body><h1>Service Unavailable</h1></body></html>", status=503)
    workspace.run("check", NAME)
    ui = ui_factory()
    first = ui.get(f"/targets/{NAME}", params={"per_page": 2}).text
    failure = re.compile(r'<li class="entry event e-error">.*?check failed: HTTP 503', re.S)
    assert failure.search(first)
    assert 'href="/targets/azure-gov-ice-post/versions/4"' in first and "/versions/2\"" not in first
    assert "page 1 of 2" in text_of(first) and 'href="?page=2&amp;per_page=2"' in first
    second = ui.get(f"/targets/{NAME}", params={"per_page": 2, "page": 2}).text
    assert 'href="/targets/azure-gov-ice-post/versions/1"' in second and not failure.search(second)


def test_change_page_strikes_the_removed_passage_and_links_the_evidence(ui, told):
    removal = told["by_kind"]["removed"]
    page = ui.get(f"/changes/{removal['id']}").text
    assert struck(page) == blog.ICE  # the whole passage, struck through
    assert "<ins>" not in page
    assert "<mark>facial recognition</mark>" in page  # the target's keyword, marked
    assert re.search(r"Keywords\s*</dt>\s*<dd><mark>facial recognition</mark>", page)
    assert f'href="/changes/{told["by_kind"]["first"]["id"]}"' in page  # previous change
    assert f'href="/changes/{told["by_kind"]["restored"]["id"]}"' in page  # next change
    for seq in (1, 2):
        assert f'src="/raw/{NAME}/{seq}"' not in page  # the change page links captures, never embeds them
        assert f'href="/targets/{NAME}/versions/{seq}/source"' in page
        assert f'href="/raw/{NAME}/{seq}?download=1"' in page
    assert "0.33" in text_of(page)  # the score

    side = ui.get(f"/changes/{removal['id']}", params={"view": "side"}).text
    row = re.search(r'<div class="row removed">\s*<div class="old">(.*?)</div>\s*<div class="new">(.*?)</div>',
                    side, re.S)
    assert row and text_of(row.group(1)) == blog.ICE and row.group(2) == ""


def test_side_by_side_puts_a_rewritten_paragraph_beside_its_old_form():
    ops = [[0, "Title\n"], [-1, "Old paragraph one.\nOld paragraph two.\n"], [1, "New paragraph.\n"], [0, "End\n"]]
    rows = render.side_by_side(ops)
    assert [r.kind for r in rows] == ["kept", "changed", "removed", "kept"]
    assert rows[1].left == [[(-1, "Old paragraph one.")]] and rows[1].right == [[(1, "New paragraph.")]]


def test_restore_page_names_the_version_it_returned_to(ui, told):
    restore = told["by_kind"]["restored"]
    page = text_of(ui.get(f"/changes/{restore['id']}").text)
    assert "Restored the text of v1 , first seen" in page
    assert blog.ICE in page


def test_compare_any_two_versions(ui, told):
    same = ui.get(f"/targets/{NAME}/compare", params={"from": "v1", "to": "3"}).text
    assert "v1 and v3 have the same text" in same and "<del>" not in same and "<ins>" not in same
    back = ui.get(f"/targets/{NAME}/compare", params={"from": 4, "to": 2}).text  # reversed: shown oldest first
    assert underlined(back) == f"honored {blog.ICE}" and struck(back) == "proud"
    assert ui.get(f"/targets/{NAME}/compare", params={"from": 1, "to": 9}).status_code == 404


def test_version_page_frames_the_capture_in_a_sandbox_and_shows_the_text(ui, told):
    page = ui.get(f"/targets/{NAME}/versions/1").text
    frame = re.search(r"<iframe[^>]*>", page).group(0)
    assert 'sandbox=""' in frame and f'src="/raw/{NAME}/1"' in frame  # no allow-scripts, no allow-same-origin
    assert blog.ICE in text_of(page)
    assert told["versions"][-1]["raw_sha256"] in page

    raw = ui.get(f"/raw/{NAME}/1")
    assert raw.content == blog.post(seed=0).encode()  # byte for byte as fetched
    policy = raw.headers["content-security-policy"]
    assert policy.startswith("sandbox;") and "default-src 'none'" in policy and "script-src" not in policy
    assert raw.headers["x-content-type-options"] == "nosniff"
    download = ui.get(f"/raw/{NAME}/1", params={"download": 1})
    assert download.headers["content-disposition"] == f'attachment; filename="{NAME}-v1.html"'

    source = ui.get(f"/targets/{NAME}/versions/1/source").text
    assert "&lt;script&gt;var wpData" in source and "<script>var wpData" not in source


def test_search_finds_every_page_that_ever_said_a_phrase(ui, told):
    hits = ui.get("/api/search", params={"q": "FACIAL   recognition"}).json()
    assert [h["target"] for h in hits] == [NAME]
    hit = hits[0]
    assert hit["versions"] == [1, 3, 4] and hit["present_now"] is True
    assert hit["runs"] == [
        {"first_version": 1, "last_version": 1, "appeared_in_change": told["by_kind"]["first"]["id"],
         "appeared_as": "first", "removed_in_change": told["by_kind"]["removed"]["id"]},
        {"first_version": 3, "last_version": 4, "appeared_in_change": told["by_kind"]["restored"]["id"],
         "appeared_as": "restored", "removed_in_change": None}]
    assert "facial recognition and identification" in hit["snippet"]

    page = ui.get("/search", params={"q": "facial recognition"}).text
    assert "<mark>facial recognition</mark>" in page
    assert f'href="/changes/{told["by_kind"]["removed"]["id"]}">removed</a>' in page
    # The passage came back with v3: the search page says so, not that it "appeared".
    assert f'href="/changes/{told["by_kind"]["restored"]["id"]}">restored</a>' in page
    assert "No stored version of any page contains" in ui.get("/search", params={"q": "quantum teleportation"}).text
    assert ui.get("/api/search", params={"q": "pleased to announce"}).json()[0]["target"] == "press-release"


def test_unknown_things_are_404_in_html_and_json(ui):
    assert ui.get("/targets/nope").status_code == 404 and "no target named" in ui.get("/targets/nope").text
    assert ui.get("/changes/999").status_code == 404
    assert ui.get("/api/targets/nope").json()["detail"].startswith("no target named 'nope'")
    assert ui.get("/api/targets/nope/versions").json() == {"detail": "no target named 'nope'"}
    assert ui.get(f"/targets/{NAME}/versions/x7").status_code == 404
    nowhere = ui.get("/nowhere")
    assert nowhere.status_code == 404 and nowhere.headers["content-type"].startswith("text/html")
    bad = ui.get("/changes/abc")
    assert bad.status_code == 400 and "Bad address (change_id: Input should be a valid integer" in unescape(bad.text)
    assert ui.get("/api/changes/abc").status_code == 422  # the API keeps FastAPI's validation details


# ---- escaping ----------------------------------------------------------------------------------

XSS = '<script>alert("xss")</script>'
HOSTILE = f"""<!DOCTYPE html><html><head><title>{XSS} "quoted" &amp; 'single'</title></head>
<body onload="alert(1)"><main>
<p>Plain text {XSS.replace("<", "&lt;")} and &lt;img src=x onerror=alert(2)&gt; here.</p>
<p title="x&quot; onmouseover=&quot;alert(3)">Attribute payload \x0b with a control char.</p>
<p><a href="javascript:alert(4)">a javascript: link</a> <img src=x onerror="alert(5)"></p>
{XSS}
</main></body></html>"""


def test_page_text_is_escaped_everywhere_and_pages_forbid_inline_script(server, workspace, ui_factory):
    server.set("/x", blog.post(seed=0))
    workspace.write_config(f"""
[monitor]
retries = 0
calibrate = false
[[targets]]
name = "hostile"
url = '{server.url('/x?q="><script>alert(6)</script>')}'
keywords = ["<b>bold</b>"]
tags = ["<i>tag</i>"]
""")
    server.set("/x", HOSTILE.replace("here.", "here. Version one."))
    workspace.run("check")
    server.set("/x", HOSTILE)
    workspace.run("check")
    ui = ui_factory()
    change_id = workspace.json("history", "hostile")["changes"][0]["id"]
    for path in ("/", "/changes", "/targets/hostile", f"/changes/{change_id}", f"/changes/{change_id}?view=side",
                 "/targets/hostile/compare?from=1&to=2", "/targets/hostile/versions/2",
                 "/targets/hostile/versions/2/source", "/search?q=alert", f"/search?q={XSS}"):
        response = ui.get(path)
        assert response.status_code == 200, path
        for payload in ("<script>alert", "<img src=x", "<i>tag", "<b>bold", "onload=\"alert"):
            assert payload not in response.text, (path, payload)
        policy = response.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy.split("style-src")[0]
        assert response.headers["x-frame-options"] == "DENY" and response.headers["referrer-policy"] == "same-origin"
    assert "&lt;script&gt;alert(&#34;xss&#34;)&lt;/script&gt;" in ui.get("/targets/hostile/versions/2").text
    for feed in ("/changes.atom", "/changes.rss", "/targets/hostile/changes.atom"):
        parsed = feedparser.parse(ui.get(feed).content)
        assert not parsed.bozo, (feed, parsed.get("bozo_exception"))
        assert parsed.entries and all("<script>" not in e.get("summary", "") for e in parsed.entries)


# ---- feeds ------------------------------------------------------------------------------------

def test_feeds_carry_the_summary_and_the_diff_for_any_reader(server, workspace, ui_factory):
    told = story.tell(server, workspace, monitor_extra='base_url = "https://monitor.example.org/"')
    ui = ui_factory()
    removal = told["by_kind"]["removed"]
    for path in ("/changes.atom", f"/targets/{NAME}/changes.atom", "/changes.rss", f"/targets/{NAME}/changes.rss"):
        response = ui.get(path)
        assert response.headers["content-type"].startswith(
            "application/atom+xml" if path.endswith("atom") else "application/rss+xml")
        feed = feedparser.parse(response.content)
        assert not feed.bozo, feed.get("bozo_exception")
        assert feed.version == ("atom10" if path.endswith("atom") else "rss20")
        assert [e.title for e in feed.entries] == [
            f"Edited: {NAME} (v3 → v4)", f"Restored: {NAME} (v2 → v3)", f"Removed: {NAME} (v1 → v2)"]
        entry = feed.entries[2]
        assert entry.link == f"https://monitor.example.org/changes/{removal['id']}"
        assert entry.id == entry.link
        body = entry.content[0].value if path.endswith("atom") else entry.description
        assert removal["summary"] in unescape(body)
        assert f'{blog.ICE}</del>' in body and "keywords: facial recognition" in body
        assert entry.published_parsed[:5] == tuple(int(x) for x in re.split(r"[-T:]", removal["detected_at"][:16]))
    global_feed = feedparser.parse(ui.get("/changes.atom").content)
    assert global_feed.feed.title == "monitor: all changes"
    assert any(link.rel == "self" and link.href == "https://monitor.example.org/changes.atom"
               for link in global_feed.feed.links)


def test_a_page_gone_is_a_feed_entry(server, workspace, told, ui_factory):
    server.set("/post", "<html><body>Not found</body></html>", status=404)
    for _ in range(3):
        workspace.run("check", NAME)
    ui = ui_factory()
    feed = feedparser.parse(ui.get(f"/targets/{NAME}/changes.rss").content)
    gone = feed.entries[0]
    assert gone.title == f"Page gone: {NAME}" and "HTTP 404 on 3 checks in a row" in gone.description


# ---- the API and its schema -----------------------------------------------------------------

def schema_validator(openapi: dict, path: str) -> Draft202012Validator:
    """The JSON Schema of the 200 answer of GET `path` (an OpenAPI path template)."""
    schema = openapi["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    return Draft202012Validator({**schema, "components": openapi["components"]})


def component(openapi: dict, name: str) -> Draft202012Validator:
    return Draft202012Validator({"$ref": f"#/components/schemas/{name}", "components": openapi["components"]})


def test_api_answers_match_the_openapi_document_and_the_cli(server, workspace, told, ui_factory, receiver):
    # An alert channel, so the outbox has rows.
    text = workspace.config.read_text().replace("calibrate = false", 'calibrate = false\nalerts = ["hook"]')
    workspace.write_config(text + hook(receiver))
    server.set("/post", blog.post(seed=9))  # unchanged text: no alert; a check to list
    server.set("/press", story.PRESS.replace("new office", "new office in Berlin"))
    workspace.run("check")
    ui = ui_factory()
    openapi = ui.get("/api/openapi.json").json()
    validate_openapi(openapi)  # a valid OpenAPI document
    removal = told["by_kind"]["removed"]
    calls = {
        "/api/targets": ("/api/targets", workspace.json("targets")),
        "/api/sites": ("/api/sites", workspace.json("sites")),
        "/api/targets/{name}": (f"/api/targets/{NAME}", workspace.json("history", NAME)),
        "/api/targets/{name}/versions": (f"/api/targets/{NAME}/versions", workspace.json("history", NAME)["versions"]),
        "/api/targets/{name}/versions/{version}": (f"/api/targets/{NAME}/versions/v2",
                                                   workspace.json("show", NAME, "2")),
        "/api/targets/{name}/changes": (f"/api/targets/{NAME}/changes", workspace.json("history", NAME)["changes"]),
        "/api/targets/{name}/diff": (f"/api/targets/{NAME}/diff?from=1&to=2", workspace.json("diff", NAME, "1", "2")),
        "/api/changes": ("/api/changes", None),
        "/api/changes/{change_id}": (f"/api/changes/{removal['id']}", {**removal, "target": NAME}),
        "/api/alerts": ("/api/alerts", workspace.json("alerts")),
        "/api/search": ("/api/search?q=azure", None),
    }
    assert set(openapi["paths"]) == set(calls)
    for template, (path, from_cli) in calls.items():
        response = ui.get(path)
        assert response.status_code == 200, path
        body = response.json()
        errors = [e.message for e in schema_validator(openapi, template).iter_errors(body)]
        assert not errors, (path, errors[:3])
        if from_cli is not None:
            assert body == from_cli, path  # the API and `--json` print the same documents
    assert len(ui.get("/api/alerts").json()) >= 1
    # The CLI's documents validate against the same schema.
    for name, document in (("History", workspace.json("history", NAME)), ("Diff", workspace.json("diff", NAME)),
                           ("VersionText", workspace.json("show", NAME)), ("Target", workspace.json("targets")[0]),
                           ("Alert", workspace.json("alerts")[0])):
        errors = [e.message for e in component(openapi, name).iter_errors(document)]
        assert not errors, (name, errors[:3])

    # The latest change by default, as `monitor diff NAME`; filters and paging of /api/changes.
    assert ui.get(f"/api/targets/{NAME}/diff").json() == workspace.json("diff", NAME)
    removed = ui.get("/api/changes", params={"kind": "removed"}).json()
    assert [c["id"] for c in removed] == [removal["id"]]
    newest, *older = ui.get("/api/changes", params={"target": NAME}).json()
    assert [c["id"] for c in ui.get("/api/changes", params={"target": NAME, "before": newest["id"]}).json()] == \
        [c["id"] for c in older]
    bad = ui.get("/api/changes", params={"kind": "nonsense"})
    assert bad.status_code == 422


# ---- login, tokens, CSRF, binding --------------------------------------------------------------

def csrf_of(page: httpx.Response) -> str:
    return re.search(r'name="csrf" value="([0-9a-f]+)"', page.text).group(1)


def test_a_password_or_token_is_required_once_set(server, workspace, ui_factory, monkeypatch):
    monkeypatch.setenv("MONITOR_TEST_PASSWORD", PASSWORD)
    story.tell(server, workspace, monitor_extra=f'web_password = "${{MONITOR_TEST_PASSWORD}}"\nweb_token = "{TOKEN}"')
    ui = ui_factory()
    page = ui.get(f"/targets/{NAME}", params={"page": 1})
    assert page.status_code == 303 and page.headers["location"] == f"/login?next=/targets/{NAME}%3Fpage%3D1"
    api = ui.get("/api/targets")
    assert api.status_code == 401 and api.headers["www-authenticate"].startswith("Bearer")
    assert ui.get("/changes.atom").status_code == 401 and "Basic" in ui.get("/changes.atom").headers["www-authenticate"]
    assert ui.get(f"/raw/{NAME}/1").status_code == 401
    assert ui.get("/static/style.css").status_code == 200  # the login page needs its style

    assert ui.get("/api/targets", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert ui.get("/api/targets", headers={"Authorization": "Bearer wrong-token-0000000"}).status_code == 401
    assert ui.get("/changes.atom", auth=("anyone", PASSWORD)).status_code == 200  # feed readers: HTTP Basic
    assert ui.get("/changes.atom", auth=("anyone", TOKEN)).status_code == 200
    assert ui.get("/changes.atom", auth=("anyone", "wrong")).status_code == 401

    # The login form: CSRF token required, then a session cookie that is HttpOnly and SameSite.
    form = ui.get("/login", params={"next": f"/targets/{NAME}"})
    token = csrf_of(form)
    assert ui.http.post("/login", data={"password": PASSWORD, "next": "/"}).status_code == 403
    wrong = ui.http.post("/login", data={"password": "nope", "csrf": token, "next": "/"})
    assert wrong.status_code == 401 and "Wrong password or token" in wrong.text
    good = ui.http.post("/login", data={"password": PASSWORD, "csrf": token, "next": f"/targets/{NAME}"})
    assert good.status_code == 303 and good.headers["location"] == f"/targets/{NAME}"
    cookie = good.headers["set-cookie"]
    assert "monitor_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert ui.get(f"/targets/{NAME}").status_code == 200 and ui.get("/api/targets").status_code == 200

    # Log out: a POST with the page's CSRF token, from this origin only.
    dashboard = ui.get("/")
    assert ui.http.post("/logout", data={}).status_code == 403
    assert ui.http.post("/logout", data={"csrf": csrf_of(dashboard)},
                        headers={"Origin": "https://evil.example"}).status_code == 403
    out = ui.http.post("/logout", data={"csrf": csrf_of(dashboard)})
    assert out.status_code == 303 and ui.get("/").status_code == 303


def test_login_redirects_only_within_the_site_and_slows_guessing(server, workspace, ui_factory):
    story.tell(server, workspace, monitor_extra=f'web_password = "{PASSWORD}"')
    ui = ui_factory()
    token = csrf_of(ui.get("/login"))
    for evil in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        response = ui.http.post("/login", data={"password": PASSWORD, "csrf": token, "next": evil})
        assert response.headers["location"] == "/", evil
    ui.http.cookies.clear()
    token = csrf_of(ui.get("/login"))
    for _ in range(LOGIN_FAILURES):
        assert ui.http.post("/login", data={"password": "guess", "csrf": token}).status_code == 401
    blocked = ui.http.post("/login", data={"password": PASSWORD, "csrf": token})
    assert blocked.status_code == 429 and "Too many failed attempts" in blocked.text


def test_without_login_only_loopback_host_names_are_answered(ui):
    assert ui.get("/", headers={"Host": "localhost"}).status_code == 200
    rebound = ui.get("/api/targets", headers={"Host": "attacker.example:8000"})
    assert rebound.status_code == 421  # a DNS-rebinding page cannot read the UI through the browser


def test_refuses_to_serve_beyond_loopback_without_a_password(server, workspace):
    story.tell(server, workspace)
    for command in (("serve", "--host", "0.0.0.0"), ("run", "--serve", "--host", "192.0.2.10")):
        result = workspace.run(*command, expect=2)
        assert "refusing to serve on" in result.stderr and "web_password or web_token" in result.stderr
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    try:
        result = workspace.run("serve", "--port", str(busy.getsockname()[1]), expect=2)
        assert "cannot listen on 127.0.0.1" in result.stderr
    finally:
        busy.close()
    short = workspace.config.read_text().replace("calibrate = false", 'calibrate = false\nweb_password = "short"')
    workspace.write_config(short)
    assert "key 'web_password': String should have at least 8 characters" in workspace.run("serve", expect=2).stderr


# ---- alerts link here; the CLI serves ----------------------------------------------------------

def hook(receiver) -> str:
    """An alert channel `hook`: a webhook to the loopback receiver."""
    return f'\n[alerts.hook]\ntype = "webhook"\nurl = "{receiver.url("/hook")}"\n'


def test_alert_links_open_the_change_and_target_pages(server, workspace, receiver, ui_factory):
    extra = 'base_url = "https://monitor.example.org"\nalerts = ["hook"]\nalert_wait = "5s"'
    server.set("/press", story.PRESS)
    server.set("/post", blog.post(seed=0))
    workspace.write_config(story.config(server, extra) + hook(receiver))
    workspace.run("check")
    server.set("/post", blog.post(story.WITHOUT_ICE, seed=1))
    workspace.run("check", NAME)
    alert = [a for a in receiver.delivered("/hook") if a["kind"] == "removed"][0]
    ui = ui_factory()
    change_page = ui.get(urlsplit(alert["links"]["change"]).path)
    assert change_page.status_code == 200 and struck(change_page.text) == blog.ICE
    target_page = ui.get(urlsplit(alert["links"]["target"]).path)
    assert target_page.status_code == 200 and f"<h1>{NAME}" in target_page.text

    outbox = ui.get("/alerts").text
    change_id = alert["links"]["change"].rsplit("/", 1)[1]
    assert "hook" in outbox and "sent" in outbox and f'href="/changes/{change_id}"' in outbox


def test_outbox_page_shows_failed_alerts_with_their_error(server, workspace, receiver, ui_factory):
    receiver.default_status = 500
    extra = 'alerts = ["hook"]\nalert_wait = "0s"\nalert_max_age = "1s"\nalert_retry = "1s"'
    server.set("/press", story.PRESS)
    server.set("/post", blog.post(seed=0))
    workspace.write_config(story.config(server, extra) + hook(receiver))
    workspace.run("check")
    server.set("/post", blog.post(story.WITHOUT_ICE, seed=1))
    workspace.run("check", NAME)
    wait_for(lambda: workspace.run("alerts", "--flush") and workspace.json("alerts", "--failed"), timeout=15)
    ui = ui_factory()
    failed = ui.get("/alerts", params={"failed": 1}).text
    assert "failed" in failed and "HTTP 500" in failed
    assert ui.get("/api/alerts", params={"failed": True}).json() == workspace.json("alerts", "--failed")
    assert "failed alert" in text_of(ui.get("/").text)  # at a glance on the dashboard


def test_behind_a_proxy_at_base_urls_path_links_carry_the_prefix(server, workspace, ui_factory):
    told = story.tell(server, workspace, monitor_extra='base_url = "https://news.example.org/monitor/"')
    ui = ui_factory()
    page = ui.get(f"/changes/{told['by_kind']['removed']['id']}", headers={"Host": "news.example.org"}).text
    assert 'href="/monitor/static/style.css"' in page and f'href="/monitor/targets/{NAME}/versions/1"' in page
    assert 'href="/targets/' not in page
    feed = feedparser.parse(ui.get("/changes.atom").content)
    assert feed.entries[-1].link == f"https://news.example.org/monitor/changes/{told['by_kind']['removed']['id']}"


def test_config_changes_reach_the_pages_without_a_restart(ui, workspace, monkeypatch):
    from monitor.web import context as web_context

    monkeypatch.setattr(web_context, "RELOAD_EVERY", 0.0)
    workspace.write_config(workspace.config.read_text().replace('tags = ["acme"]', 'tags = ["acme", "newsroom"]'))
    os.utime(workspace.config, (1, 1))  # a different modification time, whatever the clock's resolution
    assert 'href="?tag=newsroom"' in ui.get("/").text


def monitor_process(workspace, *args):
    """`monitor -v COMMAND --config … ARGS` as a real process."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-m", "monitor", "-v", *args[:1], "--config", str(workspace.config),
                             *args[1:]], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_run_serve_runs_the_daemon_and_the_ui_in_one_process(server, workspace):
    server.set("/press", story.PRESS)
    server.set("/post", blog.post(seed=0))
    workspace.write_config(story.config(server, 'interval = "1s"\njitter = 0'))
    port = free_port()
    process = monitor_process(workspace, "run", "--serve", "--port", str(port))
    try:
        api = f"http://127.0.0.1:{port}/api/targets/{NAME}"
        wait_for(lambda: answers(api) and httpx.get(api).json()["versions"], timeout=20)
        server.set("/post", blog.post(story.WITHOUT_ICE, seed=1))  # the daemon finds the removal; the UI shows it
        removals = lambda: [c for c in httpx.get(api).json()["changes"] if c["kind"] == "removed"]  # noqa: E731
        change = wait_for(removals, timeout=20)[0]
        assert struck(httpx.get(f"http://127.0.0.1:{port}/changes/{change['id']}").text) == blog.ICE
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    output = process.stdout.read()
    assert "web UI on http://127.0.0.1:" in output and "stopped" in output
    assert not answers(f"http://127.0.0.1:{port}/")


def test_serve_command_serves_until_sigterm(told, workspace):
    port = free_port()
    process = monitor_process(workspace, "serve", "--port", str(port))
    try:
        wait_for(lambda: answers(f"http://127.0.0.1:{port}/"), timeout=20)
        assert json.loads(httpx.get(f"http://127.0.0.1:{port}/api/targets").text)[0]["name"] == NAME
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert f"serving http://127.0.0.1:{port}/" in process.stdout.read()
