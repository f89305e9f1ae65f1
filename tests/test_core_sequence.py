"""The defining case end to end: a post edited, restored and edited again, with page chrome that
changes on every request, then an outage and a deletion — through the real `monitor` command,
a real HTTP server and a real SQLite file."""
from __future__ import annotations

import blog

CONFIG = """
[monitor]
retries = 0
calibrate = false

[[targets]]
name = "azure-gov-ice-post"
url = "{url}"
selector = "article .entry-content"
"""


def kinds(history):
    return [c["kind"] for c in reversed(history["changes"])]


def test_removal_restore_edit_outage_and_deletion(server, workspace):
    server.set("/post", blog.post(seed=0))
    workspace.write_config(CONFIG.format(url=server.url("/post")))
    name = "azure-gov-ice-post"

    out = workspace.run("check").stdout
    assert "v1 first" in out
    h = workspace.json("history", name)
    assert len(h["versions"]) == 1 and kinds(h) == ["first"]

    # Same article, different chrome (nonce, share count, timestamps, trending list): no change.
    server.set("/post", blog.post(seed=1))
    workspace.run("check")
    h = workspace.json("history", name)
    assert len(h["versions"]) == 1, "page chrome must not make a new version"
    assert h["versions"][0]["times_seen"] == 2

    # v2: the ICE paragraph deleted.
    without = [p for p in blog.PARAGRAPHS if p != blog.ICE]
    server.set("/post", blog.post(without, seed=2))
    out = workspace.run("check").stdout
    assert "v2 removed" in out
    h = workspace.json("history", name)
    removal = h["changes"][0]
    assert removal["kind"] == "removed" and (removal["from_version"], removal["to_version"]) == (1, 2)
    assert removal["stats"]["blocks_removed"] == 1 and removal["stats"]["words_added"] == 0
    assert any("facial recognition and identification" in p["removed"] for p in removal["passages"])
    assert "facial recognition" in removal["summary"] or "This can help employees" in removal["summary"]

    # v3: the paragraph put back — a restore that names version 1 and when it was first seen.
    server.set("/post", blog.post(seed=3))
    out = workspace.run("check").stdout
    assert "v3 restored" in out
    h = workspace.json("history", name)
    restore = h["changes"][0]
    assert restore["kind"] == "restored" and restore["restored_version"] == 1
    assert h["versions"][-1]["first_seen"][:16].replace("T", " ") in restore["summary"]
    assert h["versions"][0]["text_sha256"] == h["versions"][-1]["text_sha256"]

    # v4: one word changed.
    edited = [p.replace("we are proud", "we are honored") for p in blog.PARAGRAPHS]
    server.set("/post", blog.post(edited, seed=4))
    workspace.run("check")
    h = workspace.json("history", name)
    edit = h["changes"][0]
    assert edit["kind"] == "edited"
    assert (edit["stats"]["words_removed"], edit["stats"]["words_added"]) == (1, 1)
    assert edit["passages"][0]["removed"] == "proud" and edit["passages"][0]["added"] == "honored"

    # An outage is a check error, never "all content removed".
    server.set("/post", "<html><body><h1>Service Unavailable</h1></body></html>", status=503)
    out = workspace.run("check").stdout
    assert "ERROR HTTP 503" in out
    h = workspace.json("history", name)
    assert len(h["versions"]) == 4 and len(h["changes"]) == 4
    assert h["target"]["status"] == "error" and h["checks"][0]["outcome"] == "error"

    # Back with the same text as before the outage: compared with the last good version, no change.
    server.set("/post", blog.post(edited, seed=5))
    workspace.run("check")
    h = workspace.json("history", name)
    assert len(h["versions"]) == 4 and len(h["changes"]) == 4 and h["target"]["status"] == "ok"

    # Deleted: 404 three times in a row raises `gone` once, on the third.
    server.set("/post", "<html><body>Not found</body></html>", status=404)
    for attempt in range(1, 5):
        workspace.run("check")
        events = [e["kind"] for e in workspace.json("history", name)["events"]]
        assert events.count("gone") == (1 if attempt >= 3 else 0), (attempt, events)
    h = workspace.json("history", name)
    assert h["target"]["status"] == "gone" and len(h["versions"]) == 4
    assert kinds(h) == ["first", "removed", "restored", "edited"]
    assert [e["kind"] for e in reversed(h["events"])] == [
        "first", "removed", "restored", "edited", "error", "recovered", "error", "gone"]


def test_diff_and_show_present_the_removal(server, workspace):
    server.set("/post", blog.post(seed=0))
    workspace.write_config(CONFIG.format(url=server.url("/post")))
    workspace.run("check")
    server.set("/post", blog.post([p for p in blog.PARAGRAPHS if p != blog.ICE], seed=1))
    workspace.run("check")

    plain = workspace.run("diff", "azure-gov-ice-post", "--no-color").stdout
    assert "[-" + blog.ICE + "-]" in plain
    coloured = workspace.run("diff", "azure-gov-ice-post", "--color").stdout
    assert "\x1b[9m" in coloured and "\x1b[31m" in coloured  # struck through, red
    as_json = workspace.json("diff", "azure-gov-ice-post", "1", "2")
    assert [-1, blog.ICE + "\n"] in as_json["ops"]

    shown = workspace.run("show", "azure-gov-ice-post", "1").stdout
    assert blog.ICE in shown and "shares" not in shown
    latest = workspace.json("show", "azure-gov-ice-post")
    assert latest["version"] == 2 and blog.ICE not in latest["blocks"]
    raw = workspace.run("show", "azure-gov-ice-post", "v1", "--raw").stdout
    assert raw == blog.post(seed=0)
