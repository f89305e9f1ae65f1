"""Alerts through the persistent outbox, against real receivers: an aiosmtpd SMTP server and a
local HTTP endpoint standing in for Slack and webhooks. None lost, none doubled, nothing injected."""
from __future__ import annotations

import hashlib
import hmac
import json
import signal
import time

import blog
from conftest import checked, daemon_config, wait_for

NAME = "azure-gov-ice-post"
WITHOUT_ICE = [p for p in blog.PARAGRAPHS if p != blog.ICE]


def config(server, receiver=None, smtp=None, extra="", target_extra="", channels=None, monitor_extra="",
           wait="6s"):
    text = f"""
[monitor]
retries = 0
calibrate = false
alert_retry = "1s"
alert_wait = "{wait}"
base_url = "https://monitor.example.org"
{monitor_extra}
"""
    names = []
    if receiver is not None:
        names.append("newsroom")
        text += f'\n[alerts.newsroom]\ntype = "slack"\nwebhook_url = "{receiver.url("/slack/T000/B000/SECRETTOKEN")}"\n'
    if smtp is not None:
        names.append("editors")
        text += f"""
[alerts.editors]
type = "email"
smtp_host = "127.0.0.1"
smtp_port = {smtp.port}
security = "none"
from = "monitor@example.org"
to = ["editors@example.org", "desk@example.org"]
"""
    text += extra
    text += f"""
[[targets]]
name = "{NAME}"
url = "{server.url('/post')}"
selector = "article .entry-content"
alerts = {json.dumps(channels if channels is not None else names)}
{target_extra}
"""
    return text


def slack_text(post: dict) -> str:
    return json.dumps(post, ensure_ascii=False)


def struck(post: dict) -> list[str]:
    """The struck-through (removed) text of a Block Kit message."""
    return [el["text"] for block in post["blocks"] if block["type"] == "rich_text"
            for part in block["elements"] for el in part["elements"] if el.get("style", {}).get("strike")]


def parts(message) -> tuple[str, str]:
    return (message.get_body(("plain",)).get_content(), message.get_body(("html",)).get_content())


def test_ice_removal_and_restore_reach_slack_and_email_once_each(server, workspace, receiver, smtp):
    server.set("/post", blog.post(seed=0))
    workspace.write_config(config(server, receiver, smtp))
    workspace.run("check")  # first version: not alerted by default
    assert receiver.posts == [] and smtp.messages == []

    server.set("/post", blog.post(WITHOUT_ICE, seed=1))
    out = workspace.run("check").stdout
    assert "alerts: 2 sent" in out
    [removal] = receiver.delivered("/slack/T000/B000/SECRETTOKEN")
    assert removal["blocks"][0]["text"]["text"] == f"Removed: {NAME}"
    assert any("facial recognition and identification" in text for text in struck(removal))
    assert "https://monitor.example.org/changes/" in slack_text(removal)
    [mail] = smtp.messages
    assert mail["Subject"] == f"[monitor] removed: {NAME}"
    assert mail["To"] == "editors@example.org, desk@example.org"
    plain, html = parts(mail)
    assert "- " + blog.ICE in plain
    assert "facial recognition and identification.</del>" in html and "<del" in html

    server.set("/post", blog.post(seed=2))
    out = workspace.run("check").stdout
    assert "alerts: 2 sent" in out
    posts = receiver.delivered("/slack/T000/B000/SECRETTOKEN")
    assert len(posts) == 2 and len(smtp.messages) == 2
    restore = posts[1]
    assert restore["blocks"][0]["text"]["text"] == f"Restored: {NAME}"
    assert "restored version 1" in restore["blocks"][1]["text"]["text"]
    assert smtp.messages[1]["Subject"] == f"[monitor] restored: {NAME}"
    assert "restored" in parts(smtp.messages[1])[0]

    # Nothing more to send: another pass delivers nothing twice.
    workspace.run("check")
    assert len(receiver.posts) == 2 and len(smtp.messages) == 2
    states = {a["state"] for a in workspace.json("alerts")}
    assert states == {"sent"}


def test_smtp_outage_delays_the_alert_and_never_loses_it(server, workspace, smtp_down):
    server.set("/post", blog.post(seed=0))
    workspace.write_config(config(server, smtp=smtp_down, wait="0s"))
    workspace.run("check")
    server.set("/post", blog.post(WITHOUT_ICE, seed=1))
    out = workspace.run("check").stdout
    assert "alerts: 1 retrying" in out
    [alert] = workspace.json("alerts")
    assert alert["state"] == "pending" and alert["kind"] == "removed"
    assert alert["last_error"].startswith(f"SMTP 127.0.0.1:{smtp_down.port}: ConnectionRefusedError")

    smtp_down.start()
    out = workspace.run("alerts", "--flush").stdout
    assert "alerts: 1 sent" in out
    assert len(smtp_down.messages) == 1 and "facial recognition" in parts(smtp_down.messages[0])[0]
    workspace.run("alerts", "--flush")
    workspace.run("check")
    assert len(smtp_down.messages) == 1, "delivered exactly once"


def test_smtp_back_by_the_next_pass(server, workspace, smtp_down):
    server.set("/post", blog.post(seed=0))
    workspace.write_config(config(server, smtp=smtp_down, wait="0s"))
    workspace.run("check")
    server.set("/post", blog.post(WITHOUT_ICE, seed=1))
    workspace.run("check")
    smtp_down.start()
    time.sleep(1.3)  # alert_retry is 1 s (±20% jitter)
    assert "alerts: 1 sent" in workspace.run("check").stdout
    assert len(smtp_down.messages) == 1


def test_slack_429_retry_after_is_honoured(server, workspace, receiver):
    server.set("/post", blog.post(seed=0))
    workspace.write_config(config(server, receiver))
    workspace.run("check")
    receiver.script = [(429, {"Retry-After": "2"})]
    server.set("/post", blog.post(WITHOUT_ICE, seed=1))
    out = workspace.run("check").stdout
    assert "alerts: 1 sent" in out
    refused, accepted = receiver.posts
    assert refused["status"] == 429 and accepted["status"] == 200
    assert accepted["at"] - refused["at"] >= 2.0
    assert json.loads(accepted["body"]) == json.loads(refused["body"])


def test_pending_alerts_survive_sigkill_and_go_out_after_restart(server, workspace, receiver, daemon_factory):
    names = ["a", "b", "c"]
    for name in names:
        server.set(f"/{name}", blog.post(seed=0))
    text = daemon_config(server, names) + f"""
alerts = ["newsroom"]
[alerts.newsroom]
type = "webhook"
url = "{receiver.url('/hook')}"
"""
    # [monitor] alerts must sit in the [monitor] table: put it there.
    text = text.replace('max_bytes = 500000\n', 'max_bytes = 500000\nalerts = ["newsroom"]\nalert_retry = "30s"\n', 1)
    text = text.replace('\nalerts = ["newsroom"]\n[alerts.newsroom]', '\n[alerts.newsroom]')
    workspace.write_config(text)
    receiver.default_status = 503  # the receiver is down
    daemon = daemon_factory()
    wait_for(lambda: all(checked(workspace, n) for n in names), timeout=20)
    for name in names:
        server.set(f"/{name}", blog.post(WITHOUT_ICE, seed=1))
    wait_for(lambda: len(workspace.json("alerts")) == 3 and all(a["attempts"] >= 1 for a in workspace.json("alerts")),
             timeout=20)
    daemon.signal(signal.SIGKILL)
    daemon.proc.wait()
    assert {a["state"] for a in workspace.json("alerts")} == {"pending"}

    receiver.default_status = 200
    restarted = daemon_factory()
    wait_for(lambda: {a["state"] for a in workspace.json("alerts")} == {"sent"}, timeout=20)
    delivered = receiver.delivered("/hook")
    assert sorted(p["target"]["name"] for p in delivered) == names
    assert all(p["kind"] == "removed" for p in delivered)
    assert restarted.stop() == 0


def test_page_text_cannot_inject_markup_or_pings(server, workspace, receiver, smtp):
    hostile = ('Watch <script>alert(1)</script> this *bold* claim, <@channel> and <!here> and '
               '<!channel> ping, ~strike~ `code` <https://evil.example|click> &amp;')
    server.set("/post", blog.post(blog.PARAGRAPHS + [hostile], seed=0))
    workspace.write_config(config(server, receiver, smtp))
    workspace.run("check")
    server.set("/post", blog.post(blog.PARAGRAPHS, seed=1))
    workspace.run("check")

    [post] = receiver.delivered("/slack/T000/B000/SECRETTOKEN")
    assert hostile in struck(post), "the text arrives intact, as literal text"

    def mrkdwn_fields(node):
        if isinstance(node, dict):
            if node.get("type") == "mrkdwn":
                yield node["text"]
            for value in node.values():
                yield from mrkdwn_fields(value)
        elif isinstance(node, list):
            for value in node:
                yield from mrkdwn_fields(value)

    formatted = list(mrkdwn_fields(post)) + [post["text"]]  # what Slack parses for markup
    for field in formatted:
        for token in ("<!here>", "<@channel>", "<!channel>", "<script>", "*bold*", "evil.example", "~strike~"):
            assert token not in field, (token, field)

    [mail] = smtp.messages
    plain, html = parts(mail)
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;@channel&gt;" in html and "&lt;!here&gt;" in html and "&amp;amp;" in html
    assert hostile in plain


def test_webhook_payload_is_signed_and_filters_apply(server, workspace, receiver):
    server.set("/post", blog.post(seed=0))
    extra = f"""
[alerts.hook]
type = "webhook"
url = "{receiver.url('/hook')}"
secret = "s3cr3t-value"

[alerts.big-only]
type = "webhook"
url = "{receiver.url('/big')}"
min_words = 10

[alerts.removals]
type = "webhook"
url = "{receiver.url('/removals')}"
kinds = ["removed"]
"""
    workspace.write_config(config(server, extra=extra, channels=["hook", "big-only", "removals"],
                                  target_extra='keywords = ["Facial Recognition"]'))
    workspace.run("check")
    # A one-word edit: too small for big-only, not a removal for removals.
    server.set("/post", blog.post([p.replace("proud", "honored") for p in blog.PARAGRAPHS], seed=1))
    workspace.run("check")
    # Then the ICE passage removed: a keyword hit, priority everywhere.
    server.set("/post", blog.post([p.replace("proud", "honored") for p in WITHOUT_ICE], seed=2))
    workspace.run("check")

    hook = [p for p in receiver.posts if p["path"] == "/hook"]
    assert [json.loads(p["body"])["kind"] for p in hook] == ["edited", "removed"]
    for p in hook:
        expected = "sha256=" + hmac.new(b"s3cr3t-value", p["body"], hashlib.sha256).hexdigest()
        assert p["headers"]["X-Monitor-Signature"] == expected
    edited, removed = (json.loads(p["body"]) for p in hook)
    assert edited["priority"] is False and removed["priority"] is True
    assert removed["keywords"] == ["Facial Recognition"]
    assert removed["target"] == {"name": NAME, "url": server.url("/post")}
    assert removed["versions"] == {"from": 2, "to": 3, "restored": None, "restored_first_seen": None}
    assert removed["links"]["change"].startswith("https://monitor.example.org/changes/")
    assert any("facial recognition" in p["removed"] for p in removed["passages"])
    assert removed["stats"]["words_removed"] == 31
    assert [d["kind"] for d in receiver.delivered("/big")] == ["removed"]
    assert [d["kind"] for d in receiver.delivered("/removals")] == ["removed"]


def test_secrets_never_reach_errors_or_output(server, workspace):
    server.set("/post", blog.post(seed=0))
    extra = """
[alerts.hook]
type = "slack"
webhook_url = "http://127.0.0.1:9/services/T1/B2/VERYSECRETTOKEN"
"""
    workspace.write_config(config(server, extra=extra, channels=["hook"], wait="0s"))
    workspace.run("check")
    server.set("/post", blog.post(WITHOUT_ICE, seed=1))
    out = workspace.run("check").output
    listing = workspace.run("alerts", "--json").stdout
    assert "Slack webhook: ConnectError" in listing
    assert "VERYSECRETTOKEN" not in out + listing
    failed = workspace.run("test-alert", "hook", expect=1)
    assert "not delivered: Slack webhook: ConnectError" in failed.stderr
    assert "VERYSECRETTOKEN" not in failed.output


def test_alert_given_up_after_max_age_is_listed_as_failed(server, workspace):
    server.set("/post", blog.post(seed=0))
    extra = """
[alerts.hook]
type = "webhook"
url = "http://127.0.0.1:9/hook"
"""
    workspace.write_config(config(server, extra=extra, channels=["hook"],
                                  wait="0s", monitor_extra='alert_max_age = "1s"'))
    workspace.run("check")
    server.set("/post", blog.post(WITHOUT_ICE, seed=1))
    workspace.run("check")
    time.sleep(1.1)
    workspace.run("alerts", "--flush")
    [failed] = workspace.json("alerts", "--failed")
    assert failed["state"] == "failed" and "webhook: ConnectError" in failed["last_error"]
    assert "└ webhook: ConnectError" in workspace.run("alerts", "--failed").stdout


def test_test_alert_and_apprise(server, workspace, receiver):
    extra = f"""
[alerts.hook]
type = "webhook"
url = "{receiver.url('/hook')}"

[alerts.other]
type = "apprise"
urls = ["json://127.0.0.1:{receiver.port}/apprise"]
"""
    server.set("/post", blog.post(seed=0))
    workspace.write_config(config(server, extra=extra, channels=["hook", "other"]))
    assert "test alert sent to 'hook'" in workspace.run("test-alert", "hook").stdout
    [sample] = receiver.delivered("/hook")
    assert sample["kind"] == "test" and sample["passages"][0]["removed"]
    assert "test alert sent to 'other'" in workspace.run("test-alert", "other").stdout
    [note] = receiver.delivered("/apprise")
    assert note["title"] == "[monitor] test: example-post"
    assert "- accelerate facial recognition and identification" in note["message"]
    assert "no alert channel named 'nope'" in workspace.run("test-alert", "nope", expect=1).stderr


def quoted(post: dict) -> list[str]:
    """Each quoted passage of a Block Kit message as Slack shows it (its runs joined)."""
    return ["".join(el["text"] for el in part["elements"]) for block in post["blocks"] if block["type"] == "rich_text"
            for part in block["elements"]]


def test_slack_shows_a_removed_paragraph_apart_from_its_context_and_keeps_abbreviations(server, workspace, receiver):
    before = "Agencies rely on it to keep data secure. The U.S. Immigration and Customs Enforcement agency runs securely."
    paragraphs = [before, blog.ICE, "Our commitment to our customers continues."]
    server.set("/post", blog.post(paragraphs, seed=0))
    workspace.write_config(config(server, receiver, wait="2s"))
    workspace.run("check")
    server.set("/post", blog.post([paragraphs[0], paragraphs[2]], seed=1))
    workspace.run("check")
    [removal] = receiver.delivered("/slack/T000/B000/SECRETTOKEN")
    [shown] = quoted(removal)
    # The context sentence is whole ("U.S." does not end it), and each paragraph is on its own line.
    assert shown == ("The U.S. Immigration and Customs Enforcement agency runs securely.\n" + blog.ICE
                     + "\nOur commitment to our customers continues."), shown
