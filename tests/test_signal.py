"""Zero-config signal: with no selector, only real edits alert. Page chrome that changes on every
request, error pages that answer 200, and typography-only changes stay quiet; volatile blocks
are learned, shown by `monitor explain`, and can be forgotten."""
from __future__ import annotations

import hashlib
import itertools
import sys
from pathlib import Path

import pytest

import blog
from conftest import ROOT, Page

sys.path.insert(0, str(ROOT / "bench"))
import corpus_eval  # noqa: E402

EDGI = ROOT.parent / "shared" / "corpus" / "edgi"
OWN = ROOT / "tests" / "cases"
WITHOUT_ICE = [p for p in blog.PARAGRAPHS if p != blog.ICE]

CONFIG = """
[monitor]
retries = 0
calibrate_delay = "0s"

[alerts.hook]
type = "webhook"
url = "{hook}"

[[targets]]
name = "post"
url = "{url}"
alerts = ["hook"]
"""


@pytest.mark.parametrize("corpus", [EDGI, OWN], ids=["edgi", "own-cases"])
def test_corpus_verdicts_with_zero_configuration(corpus):
    results = corpus_eval.evaluate(corpus)
    assert len(results) >= 6
    wrong = [r for r in results if r["expected"] != r["got"]]
    assert not wrong, corpus_eval.table(results) + "\n" + "\n".join(map(str, wrong))


class LivePost:
    """A post whose chrome changes on every request (as real CMS pages do) while the test
    decides the article."""

    def __init__(self, server):
        self.paragraphs = list(blog.PARAGRAPHS)
        self.tip = ""
        self.title = blog.TITLE
        counter = itertools.count(1)

        def handler(request):
            body = blog.post(self.paragraphs, title=self.title, seed=next(counter), noisy=True,
                             tip=self.tip).encode()
            request.send_response(200)
            request.send_header("Content-Type", "text/html; charset=utf-8")
            request.send_header("Content-Length", str(len(body)))
            request.end_headers()
            request.wfile.write(body)

        server.set("/post", Page(handler=handler))


def kinds(workspace, silent=False):
    """The target's change kinds, oldest first; without the silent 'rebaselined' versions that
    learning a volatile block makes (the first version re-read without that block)."""
    return [c["kind"] for c in reversed(workspace.json("history", "post")["changes"])
            if silent or c["kind"] != "rebaselined"]


def test_ice_sequence_with_rotating_chrome_and_no_selector(server, workspace, receiver):
    live = LivePost(server)
    workspace.write_config(CONFIG.format(url=server.url("/post"), hook=receiver.url("/hook")))
    workspace.run("check")  # first version, calibrated with a second fetch
    for _ in range(4):  # every fetch has new nonces, share counts, stamps and a new "read next"
        workspace.run("check")
    assert kinds(workspace, silent=True) == ["first", "rebaselined"], "calibration learned, nothing alerted"

    live.paragraphs = WITHOUT_ICE
    workspace.run("check")
    workspace.run("check")
    live.paragraphs = list(blog.PARAGRAPHS)
    workspace.run("check")
    workspace.run("check")
    live.paragraphs = [p.replace("we are proud", "we are honored") for p in blog.PARAGRAPHS]
    workspace.run("check")
    workspace.run("check")

    assert kinds(workspace) == ["first", "removed", "restored", "edited"]
    sent = receiver.delivered("/hook")
    assert [a["kind"] for a in sent] == ["removed", "restored", "edited"]
    assert any("facial recognition" in p["removed"] for p in sent[0]["passages"])
    assert sent[2]["passages"][0]["removed"] == "proud" and sent[2]["passages"][0]["added"] == "honored"

    explained = workspace.run("explain", "post").stdout
    assert "learned volatile" in explained and "Read next" in explained
    assert "page chrome: 'share-bar'" in explained
    assert "outside main content" in explained and "Trending" in explained


def test_a_block_that_keeps_changing_alone_is_learned(server, workspace, receiver):
    live = LivePost(server)
    live.tip = "Tip of the hour: rotate your keys."
    workspace.write_config(CONFIG.format(url=server.url("/post"), hook=receiver.url("/hook")))
    workspace.run("check")  # calibration sees the same tip twice: nothing learned about it
    for tip in ("Tip: use managed identities.", "Tip: audit your logs.", "Tip: enable MFA."):
        live.tip = tip
        workspace.run("check")
    assert kinds(workspace) == ["first", "edited", "edited", "edited"]
    live.tip = "Tip: patch on Tuesdays."
    workspace.run("check")
    assert kinds(workspace, silent=True)[-1] == "rebaselined", "after three lone changes the tip box is volatile"
    live.tip = "Tip: back up twice."
    workspace.run("check")
    live.paragraphs = WITHOUT_ICE  # a real edit still alerts
    workspace.run("check")
    assert kinds(workspace)[-1] == "removed"
    assert [a["kind"] for a in receiver.delivered("/hook")] == ["edited", "edited", "edited", "removed"]

    explained = workspace.run("explain", "post").stdout
    assert "tip-box" in explained and "changed alone in 3 changes" in explained
    assert workspace.run("explain", "post", "--forget").stdout.startswith("forgot ")
    assert "learned volatile" not in workspace.run("explain", "post").stdout


def test_edits_to_different_paragraphs_never_teach_that_the_article_is_volatile(server, workspace, receiver):
    """Every paragraph of an article shares one block path: edits landing there, however many,
    are the content changing, and each one alerts (a learned rule would hide the article)."""
    live = LivePost(server)
    workspace.write_config(CONFIG.format(url=server.url("/post"), hook=receiver.url("/hook")))
    workspace.run("check")
    for i in range(5):  # a number in a different paragraph each time, then a reworded sentence
        paragraphs = list(live.paragraphs)
        paragraphs[i % len(paragraphs)] = paragraphs[i % len(paragraphs)].replace(".", f" ({2019 + i}).", 1)
        live.paragraphs = paragraphs
        workspace.run("check")
    seen = kinds(workspace, silent=True)
    assert len(seen) == 6 and set(seen[1:]) == {"added"}, seen  # five alerting edits, nothing rebaselined
    assert len(receiver.delivered("/hook")) == 5
    assert "changed alone" not in workspace.run("explain", "post").stdout  # (chrome rules from calibration only)
    live.paragraphs = [p for p in live.paragraphs if "facial recognition" not in p]
    workspace.run("check")
    assert kinds(workspace)[-1] == "removed"


@pytest.mark.parametrize("body, reason, gone", [
    ("<html><head><title>Page Not Found</title></head><body><main><h1>404</h1><p>Sorry, this page does not exist."
     "</p></main></body></html>", "error page (not found)", True),
    ("<html><head><title>Just a moment...</title></head><body><p>Checking your browser before accessing."
     "</p></body></html>", "error page (captcha)", False),
    ("<html><head><title>Maintenance</title></head><body><h1>We'll be back soon</h1><p>The site is under "
     "maintenance.</p></body></html>", "error page (maintenance)", False),
    ("<html><body><main><p>Short.</p></main></body></html>", "content collapsed", True),
])
def test_error_pages_answering_200_are_check_errors_not_removals(server, workspace, receiver, body, reason, gone):
    server.set("/post", blog.post(seed=0))
    workspace.write_config(CONFIG.format(url=server.url("/post"), hook=receiver.url("/hook")))
    workspace.run("check")
    server.set("/post", body)
    for attempt in range(3):
        out = workspace.run("check").stdout
        assert "post: ERROR" in out and reason in out
    h = workspace.json("history", "post")
    assert len(h["versions"]) == 1 and [c["kind"] for c in h["changes"]] == ["first"]
    assert h["target"]["status"] == ("gone" if gone else "error")
    assert [a["kind"] for a in receiver.delivered("/hook")] == (["error", "gone"] if gone else ["error"])


def test_typography_only_is_a_quiet_version(server, workspace, receiver):
    straight = blog.PARAGRAPHS + ['He said "yes" - twice...']
    curly = blog.PARAGRAPHS + ["He said “yes” – twice…"]
    server.set("/post", blog.post(straight, seed=0))
    workspace.write_config(CONFIG.format(url=server.url("/post"), hook=receiver.url("/hook")))
    workspace.run("check")
    server.set("/post", blog.post(curly, seed=0))
    workspace.run("check")
    h = workspace.json("history", "post")
    assert [c["kind"] for c in reversed(h["changes"])] == ["first", "formatting"]
    assert h["changes"][0]["score"] == 0.0 and len(h["versions"]) == 2
    assert receiver.delivered("/hook") == []


def test_explain_a_url_not_yet_watched(server, workspace):
    server.set("/post", blog.post(seed=0))
    workspace.write_config("")
    out = workspace.run("explain", "--url", server.url("/post")).stdout
    assert "scope: article" in out
    assert "WATCH" in out and "This can help employees make more informed decisions" in out
    assert "page chrome: site header" in out or "outside main content" in out


def test_a_static_new_page_is_calibrated_with_a_conditional_fetch(server, workspace, receiver):
    """Calibration's second fetch asks for the page only if it changed: a server that vouches it
    did not (304) costs no second download."""
    server.set("/post", blog.post(seed=0))
    workspace.write_config(CONFIG.format(url=server.url("/post"), hook=receiver.url("/hook")))
    workspace.run("check")

    fetches = [headers for path, headers in server.requests if path == "/post"]
    assert len(fetches) == 2, "the first fetch, then calibration's second"
    assert "If-None-Match" not in fetches[0]
    assert fetches[1].get("If-None-Match"), "calibration asks for the page only if it changed"
    assert kinds(workspace, silent=True) == ["first"]

    server.set("/post", blog.post(WITHOUT_ICE, seed=0))  # a real edit
    workspace.run("check")
    assert kinds(workspace) == ["first", "removed"]
    assert [a["kind"] for a in receiver.delivered("/hook")] == ["removed"]


def test_a_page_with_a_new_etag_on_every_request_is_still_calibrated(server, workspace, receiver):
    counter = itertools.count(1)

    def handler(request):  # new chrome, so a new ETag, on every request: the conditional fetch gets a 200
        body = blog.post(seed=next(counter), noisy=True).encode()
        request.send_response(200)
        request.send_header("Content-Type", "text/html; charset=utf-8")
        request.send_header("ETag", '"' + hashlib.sha256(body).hexdigest()[:16] + '"')
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)

    server.set("/post", handler=handler)
    workspace.write_config(CONFIG.format(url=server.url("/post"), hook=receiver.url("/hook")))
    workspace.run("check")
    assert "learned volatile" in workspace.run("explain", "post").stdout
    for _ in range(3):
        workspace.run("check")
    assert kinds(workspace) == ["first"], "the chrome that changes on every request never alerts"
    assert receiver.delivered("/hook") == []
