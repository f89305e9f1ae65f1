"""Hostile and broken responses cost one failed check with a clear error — never a version,
never damage to what is already stored."""
from __future__ import annotations

import gzip
import time

import pytest

from conftest import Page

GOOD = "<html><head><title>Post</title></head><body><article><h1>Post</h1><p>The original words.</p></article></body></html>"

CONFIG = """
[monitor]
retries = 0
calibrate = false
timeout = "2s"
max_bytes = 1000000
max_redirects = 5

[[targets]]
name = "post"
url = "{url}"
"""


def _stream_forever(handler):
    handler.send_response(200)
    handler.send_header("Content-Type", "text/html")
    handler.end_headers()
    try:
        for _ in range(2000):  # 2000 × 64 KB: far past the 1 MB cap
            handler.wfile.write(b"<p>" + b"x" * 65536 + b"</p>")
    except (BrokenPipeError, ConnectionResetError):
        pass
    handler.close_connection = True


def _drip(handler):
    handler.send_response(200)
    handler.send_header("Content-Type", "text/html")
    handler.send_header("Content-Length", "100000")
    handler.end_headers()
    try:
        for _ in range(10):
            handler.wfile.write(b"<p>")
            handler.wfile.flush()
            time.sleep(0.5)
    except (BrokenPipeError, ConnectionResetError):
        pass
    handler.close_connection = True


def _redirect_loop(handler):
    handler.send_response(302)
    hops = int(handler.path.partition("?hop=")[2] or 0)
    handler.send_header("Location", f"/post?hop={hops + 1}")
    handler.send_header("Content-Length", "0")
    handler.end_headers()


BOMB = gzip.compress(b"<p>" + b"a" * 20_000_000 + b"</p>")

HOSTILE = {
    "huge streamed body": (Page(handler=_stream_forever), "body too large"),
    "huge declared body": (Page(b"x", headers={"Content-Type": "text/html", "X-Pad": "1"}), None),
    "gzip bomb": (Page(BOMB, headers={"Content-Type": "text/html", "Content-Encoding": "gzip"}), "body too large"),
    "binary with image type": (Page(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 10, headers={"Content-Type": "image/png"}),
                               "not a web page: content-type image/png"),
    "binary posing as html": (Page(b"\x00\x01\x02garbage\x00" * 100, headers={"Content-Type": "text/html"}),
                              "binary content"),
    "endless redirects": (Page(handler=_redirect_loop), "too many redirects"),
    "slow drip": (Page(handler=_drip), "timed out after 2s"),
    "server error": (Page("<h1>Internal error</h1>", status=500), "HTTP 500"),
    "empty page": (Page("<html><body>   </body></html>"), "no text content"),
}
del HOSTILE["huge declared body"]  # covered below with a real Content-Length


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_response_is_one_failed_check(server, workspace, case):
    server.set("/post", GOOD)
    workspace.write_config(CONFIG.format(url=server.url("/post")))
    workspace.run("check")
    before = workspace.json("history", "post")

    page, message = HOSTILE[case]
    server.set("/post", page)
    out = workspace.run("check").stdout  # exit 0: the pass completed
    assert "post: ERROR" in out and message in out, out

    after = workspace.json("history", "post")
    assert after["versions"] == [dict(before["versions"][0], last_seen=after["versions"][0]["last_seen"],
                                      times_seen=after["versions"][0]["times_seen"])]
    assert [c["kind"] for c in after["changes"]] == ["first"]
    assert after["target"]["status"] == "error" and message in after["target"]["last_error"]
    assert workspace.json("show", "post")["blocks"] == ["Post", "The original words."]

    # When the page comes back unchanged, nothing is reported as changed.
    server.set("/post", GOOD)
    workspace.run("check")
    again = workspace.json("history", "post")
    assert len(again["versions"]) == 1 and again["target"]["status"] == "ok"


def test_declared_length_over_cap_is_refused_without_reading(server, workspace):
    def big(handler):
        handler.send_response(200)
        handler.send_header("Content-Type", "text/html")
        handler.send_header("Content-Length", str(50_000_000))
        handler.end_headers()
        handler.close_connection = True

    server.set("/post", Page(handler=big))
    workspace.write_config(CONFIG.format(url=server.url("/post")))
    out = workspace.run("check").stdout
    assert "body too large: 50,000,000 bytes declared, limit 1,000,000" in out


def test_nothing_listening_is_a_network_error(workspace):
    workspace.write_config(CONFIG.format(url="http://127.0.0.1:9/post"))
    out = workspace.run("check").stdout
    assert "post: ERROR network error" in out


@pytest.mark.parametrize("content_type, body, expected", [
    # An unknown charset label is skipped, as browsers do; the <meta> charset is used.
    ("text/html; charset=bogus-charset", '<meta charset="utf-8"><p>café – “quoted”</p>'.encode(), "café – “quoted”"),
    # No label anywhere and not valid UTF-8: read as windows-1252, as browsers do.
    ("text/html", "<p>caf\xe9 na\xefve</p>".encode("cp1252"), "café naïve"),
    # A byte-order mark wins over a wrong label.
    ("text/html; charset=iso-8859-1", "\ufeff<p>Grüße</p>".encode("utf-8"), "Grüße"),
    # Malformed markup still gives its text.
    ("text/html", b"<html><body><div><p>Unclosed <b>bold <i>text</div></p></span><p>Next", "Unclosed bold text"),
])
def test_charsets_and_malformed_markup_are_read_as_a_browser_would(server, workspace, content_type, body, expected):
    server.set("/post", Page(body, headers={"Content-Type": content_type}))
    workspace.write_config(CONFIG.format(url=server.url("/post")))
    workspace.run("check")
    blocks = workspace.json("show", "post")["blocks"]
    assert blocks[0] == expected
