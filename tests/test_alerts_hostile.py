"""Alert delivery against hostile or broken receivers: hundreds of alerts in one pass, receivers
that never finish answering, Slack's 429s, and secrets that must not reach the logs at any
verbosity. Receivers are real servers on 127.0.0.1 (see conftest.py)."""
from __future__ import annotations

import json
import os
import select
import socket
import socketserver
import subprocess
import sys
import threading
import time

import pytest

import blog
from conftest import ROOT
from test_alerts import WITHOUT_ICE


def config(server, names, channels: dict[str, str], wait="0s") -> str:
    """targets.toml: the targets `names` (pages /<name> on `server`), each alerting every channel."""
    text = f"""
[monitor]
calibrate = false
alert_retry = "1s"
alert_wait = "{wait}"
"""
    for channel, body in channels.items():
        text += f"\n[alerts.{channel}]\n{body}\n"
    for name in names:
        text += f"""
[[targets]]
name = "{name}"
url = "{server.url('/' + name)}"
selector = "article .entry-content"
alerts = {json.dumps(list(channels))}
"""
    return text


def webhook(url: str) -> str:
    return f'type = "webhook"\nurl = "{url}"'


def slack(url: str) -> str:
    return f'type = "slack"\nwebhook_url = "{url}"'


def email(port: int) -> str:
    return f"""type = "email"
smtp_host = "127.0.0.1"
smtp_port = {port}
security = "none"
timeout = "30s"
from = "monitor@example.org"
to = ["desk@example.org"]"""


def publish(server, names, paragraphs, seed) -> None:
    for name in names:
        server.set(f"/{name}", blog.post(paragraphs, seed=seed))


def alerts_by_state(workspace) -> dict[str, list[dict]]:
    grouped: dict[str, list[dict]] = {}
    for alert in workspace.json("alerts"):
        grouped.setdefault(alert["state"], []).append(alert)
    return grouped


# ---- 1. every due alert goes out in one pass, not the first 100 ---------------------------------

def test_one_pass_delivers_every_due_alert_and_a_flush_every_pending_one(server, workspace, receiver):
    names = [f"post{i:02d}" for i in range(30)]
    channels = {f"c{i}": webhook(receiver.url(f"/c{i}")) for i in range(4)}  # 30 × 4 = 120 alerts a pass
    publish(server, names, blog.PARAGRAPHS, seed=0)
    workspace.write_config(config(server, names, channels))
    workspace.run("check")

    publish(server, names, WITHOUT_ICE, seed=1)
    assert "alerts: 120 sent" in workspace.run("check").stdout
    for channel in channels:
        assert sorted(p["target"]["name"] for p in receiver.delivered(f"/{channel}")) == names

    # The receiver goes down: every alert is tried (and kept), then a flush sends all of them.
    receiver.default_status = 503
    publish(server, names, blog.PARAGRAPHS, seed=2)
    assert "alerts: 120 retrying" in workspace.run("check").stdout
    pending = alerts_by_state(workspace)["pending"]
    assert len(pending) == 120 and all(a["attempts"] == 1 for a in pending)

    receiver.default_status = 200
    assert "alerts: 120 sent" in workspace.run("alerts", "--flush").stdout
    assert set(alerts_by_state(workspace)) == {"sent"}
    for channel in channels:
        restored = [p["target"]["name"] for p in receiver.delivered(f"/{channel}") if p["kind"] == "restored"]
        assert sorted(restored) == names, "each restore delivered exactly once"


# ---- 2. a receiver that never finishes answering holds back neither the pass nor other channels ----

class Tarpit:
    """A TCP server on 127.0.0.1 that answers `prefix`, then one byte every 0.3 s and never a
    line end (no read timeout ever fires), for up to `limit` seconds. Records when each
    connection opened and closed, and whether the client hung up first."""

    def __init__(self, prefix: bytes, limit: float = 30.0):
        self.connections: list[dict] = []
        self.stop = threading.Event()
        tarpit = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                record = {"opened": time.monotonic(), "closed": None, "client_hung_up": False}
                tarpit.connections.append(record)
                sock = self.request
                deadline = time.monotonic() + limit
                try:
                    sock.sendall(prefix)
                    while not tarpit.stop.is_set() and time.monotonic() < deadline:
                        readable, _, _ = select.select([sock], [], [], 0.3)
                        if readable and not sock.recv(65536):
                            record["client_hung_up"] = True
                            break
                        sock.sendall(b"a")
                except OSError:
                    record["client_hung_up"] = True
                finally:
                    record["closed"] = time.monotonic()

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def still_open_at(self, moment: float) -> bool:
        """A connection was open at `moment` or opened just after it: the client had not yet given
        up on it. (A send that starts beside this one may arrive a fraction of a millisecond
        before this server accepts its connection.)"""
        return any(c["closed"] is None or moment <= c["closed"] for c in self.connections)

    def close(self) -> None:
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def tarpits():
    made = []

    def make(prefix: bytes) -> Tarpit:
        made.append(Tarpit(prefix))
        return made[-1]

    yield make
    for tarpit in made:
        tarpit.close()


def test_a_hanging_receiver_holds_back_neither_the_pass_nor_other_channels(server, workspace, receiver, smtp,
                                                                           tarpits):
    stuck_http = tarpits(b"HTTP/1.1 200 OK\r\nX-Wait: ")
    stuck_smtp = tarpits(b"220 ")
    names = ["first", "second"]
    channels = {"stuck": slack(f"http://127.0.0.1:{stuck_http.port}/services/T0/B0/X"),
                "mail": email(stuck_smtp.port),
                "desk": webhook(receiver.url("/desk"))}
    publish(server, names, blog.PARAGRAPHS, seed=0)
    workspace.write_config(config(server, names, channels))
    workspace.run("check")

    publish(server, names, WITHOUT_ICE, seed=1)
    out = workspace.run("check").stdout
    assert "checked 2 targets" in out

    # The healthy channel got its alerts while the stuck receivers were still answering, not after
    # the pass gave up on them...
    desk = [p for p in receiver.posts if p["path"] == "/desk"]
    assert sorted(json.loads(p["body"])["target"]["name"] for p in desk) == names  # checked side by side
    assert all(stuck_http.still_open_at(p["at"]) and stuck_smtp.still_open_at(p["at"]) for p in desk)
    # ...and the pass gave up on them at its time budget instead of waiting them out.
    for tarpit in (stuck_http, stuck_smtp):
        assert len(tarpit.connections) == 1, "a channel that did not answer is not sent its next alert"
        assert tarpit.connections[0]["client_hung_up"]

    # Nothing was lost: the stuck channels' alerts are pending, with the reason.
    states = alerts_by_state(workspace)
    assert sorted(a["channel"] for a in states["sent"]) == ["desk", "desk"]
    assert sorted(a["channel"] for a in states["pending"]) == ["mail", "mail", "stuck", "stuck"]
    tried = [a for a in states["pending"] if a["attempts"]]
    assert sorted(a["channel"] for a in tried) == ["mail", "stuck"]
    assert all("no answer" in a["last_error"] for a in tried)

    # The receivers are fixed: one flush sends the rest, once each, and nothing twice.
    channels.update(stuck=slack(receiver.url("/stuck")), mail=email(smtp.port))
    workspace.write_config(config(server, names, channels))
    assert "alerts: 4 sent" in workspace.run("alerts", "--flush").stdout
    assert sorted(p["blocks"][0]["text"]["text"] for p in receiver.delivered("/stuck")) == [f"Removed: {n}" for n in names]
    assert sorted(m["Subject"] for m in smtp.messages) == [f"[monitor] removed: {n}" for n in names]
    assert len([p for p in receiver.posts if p["path"] == "/desk"]) == 2


# ---- 3. a 429 pauses the whole channel -----------------------------------------------------------

@pytest.mark.parametrize("headers, pause", [({"Retry-After": "2"}, 2.0), ({}, 0.8)],
                         ids=["retry-after", "no-retry-after"])
def test_a_429_pauses_the_whole_channel_then_everything_goes_out_in_order(server, workspace, receiver,
                                                                          headers, pause):
    names = ["one", "two", "three", "four"]
    path = "/services/T0/B0/X"
    publish(server, names, blog.PARAGRAPHS, seed=0)
    workspace.write_config(config(server, names, {"newsroom": slack(receiver.url(path))}, wait="8s"))
    workspace.run("check")

    receiver.script = [(429, headers)]
    publish(server, names, WITHOUT_ICE, seed=1)
    assert "alerts: 4 sent" in workspace.run("check").stdout
    refused, *accepted = receiver.posts
    assert refused["status"] == 429 and len(accepted) == 4
    # Nothing was sent into the pause (alert_retry is 1 s, ±20 % jitter, without Retry-After).
    assert all(p["at"] - refused["at"] >= pause for p in accepted)
    queued = [a["target"] for a in sorted(workspace.json("alerts"), key=lambda a: a["id"])]
    titles = [json.loads(p["body"])["blocks"][0]["text"]["text"] for p in accepted]
    assert sorted(queued) == sorted(names) and titles == [f"Removed: {n}" for n in queued], \
        "in the order they were queued, the refused alert first"
    assert json.loads(accepted[0]["body"]) == json.loads(refused["body"])


# ---- 4. no secret in the logs, at any verbosity ---------------------------------------------------

def test_no_secret_reaches_the_logs_even_at_debug_verbosity(server, workspace, receiver):
    slack_path = "/services/T0SECRETT/B0SECRETB/xoxSLACKTOKEN123"
    hook_path, hook_query = "/hooks/HOOKSECRETID", "token=QUERYSECRET123"
    secrets = ["T0SECRETT", "B0SECRETB", "xoxSLACKTOKEN123", "HOOKSECRETID", "QUERYSECRET123", "APPRISEPASS"]
    channels = {"newsroom": slack(receiver.url(slack_path)),
                "hook": webhook(receiver.url(f"{hook_path}?{hook_query}")),
                "other": f'type = "apprise"\nurls = ["json://user:APPRISEPASS@127.0.0.1:{receiver.port}/apprise"]'}
    publish(server, ["post"], blog.PARAGRAPHS, seed=0)
    workspace.write_config(config(server, ["post"], channels))

    def check() -> str:
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        done = subprocess.run([sys.executable, "-m", "monitor", "-vv", "check", "--config", str(workspace.config)],
                              capture_output=True, text=True, env=env, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout + done.stderr

    logs = check()
    publish(server, ["post"], WITHOUT_ICE, seed=1)
    logs += check()
    assert "alerts: 3 sent" in logs
    assert "HTTP Request: POST http://127.0.0.1" in logs, "the requests are logged, without their secrets"
    [to_slack] = receiver.delivered(slack_path)
    assert to_slack["blocks"][0]["text"]["text"] == "Removed: post"
    assert [p["kind"] for p in receiver.delivered(hook_path + "?" + hook_query)] == ["removed"]
    assert len(receiver.delivered("/apprise")) == 1
    leaked = [s for s in secrets if s in logs]
    assert not leaked, f"secrets in the logs: {leaked}"
