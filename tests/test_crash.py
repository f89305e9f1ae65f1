"""kill -9 at any moment loses nothing: the daemon (`monitor run`, a real process) over many
loopback pages that keep changing, killed with SIGKILL again and again in the middle of its work
and restarted each time. Afterwards the database is whole, every snapshot file still hashes to
its name, no edit is recorded twice, and every change's alert reached the loopback receiver; an
alert whose send was cut short is sent again (at-least-once), and those repeats are counted."""
from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler

from conftest import ROOT, LoopbackServer, Page, wait_for
from test_overlap import page, send_page

from monitor.snapshots import Snapshots

TARGETS = 30
KILLS = 10


class WebhookReceiver(LoopbackServer):
    """Records each webhook POST's alert id as soon as its body has arrived, then answers after
    `delay` seconds, or not before `answer` is set: a sender killed meanwhile has delivered
    the alert without learning so."""

    def __init__(self, delay: float = 0.0):
        self.received: list[int] = []
        self.answer = threading.Event()
        self.answer.set()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                if len(body) < length:  # the sender was killed while sending: nothing arrived
                    return
                receiver.received.append(json.loads(body)["alert_id"])
                time.sleep(delay)
                receiver.answer.wait(30)
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        self._serve(Handler)


class ChangingPages:
    """Pages whose text moves on to a new revision every second or so, each at its own pace,
    until frozen."""

    def __init__(self, server, rng: random.Random):
        self.start = time.monotonic()
        self.rates = [rng.uniform(0.3, 1.0) for _ in range(TARGETS)]  # revisions per second
        self.frozen_at: float | None = None
        for i in range(TARGETS):
            server.set(f"/p/{i}", Page(handler=self.answer))

    def rev(self, i: int) -> int:
        return int(((self.frozen_at or time.monotonic()) - self.start) * self.rates[i])

    def answer(self, handler) -> None:
        i = int(handler.path.rsplit("/", 1)[1])
        send_page(handler, page(i, self.rev(i)))


CONFIG = """
[monitor]
interval = "1s"
jitter = 0
retries = 0
calibrate = false
timeout = "5s"
alert_retry = "1s"
alerts = ["hook"]

[alerts.hook]
type = "webhook"
url = "{hook}"
kinds = {kinds}
"""


def config(server, hook: str, names: list[str], kinds='["added", "removed", "edited", "restored"]') -> str:
    return CONFIG.format(hook=hook, kinds=kinds) + "".join(
        f'\n[[targets]]\nname = "{name}"\nurl = "{server.url(path)}"\nlearn = false\n' for name, path in names)


def test_kill_9_loop_loses_nothing_and_counts_repeated_alerts(server, workspace, daemon_factory):
    rng = random.Random(9)
    pages = ChangingPages(server, rng)
    hook = WebhookReceiver(delay=0.02)
    try:
        workspace.write_config(config(server, hook.url("/hook"), [(f"p{i:02d}", f"/p/{i}") for i in range(TARGETS)]))
        db_path = workspace.path / "monitor.db"
        for _ in range(KILLS):
            daemon = daemon_factory()
            wait_for(lambda: "daemon started" in daemon.output(), timeout=30)
            time.sleep(rng.uniform(0.2, 1.0))  # into its checks, recording and sending
            daemon.signal(signal.SIGKILL)
            assert daemon.stop() == -signal.SIGKILL

        # The pages stop changing; a last daemon catches up with them and drains the outbox.
        pages.frozen_at = time.monotonic()
        settled_from = len(server.requests)
        daemon = daemon_factory()

        def settled() -> bool:
            after = Counter(path for path, _ in server.requests[settled_from:])
            if any(after[f"/p/{i}"] < 2 for i in range(TARGETS)):  # a whole check after the freeze
                return False
            with sqlite3.connect(db_path) as db:
                return db.execute("SELECT count(*) FROM alerts WHERE state != 'sent'").fetchone()[0] == 0

        wait_for(settled, timeout=60, interval=0.2)
        assert daemon.stop() == 0

        db = sqlite3.connect(db_path)
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        # Every snapshot file still hashes to its name, and every version's capture and text
        # are there to read.
        snapshots = Snapshots(workspace.path / "snapshots")
        files = list(snapshots.root.rglob("*.zst"))
        for path in files:
            snapshots.get(path.name.removesuffix(".zst"))
        for raw, text in db.execute("SELECT raw_sha, text_sha FROM versions"):
            snapshots.get(raw)
            snapshots.get_text(text)
        # No edit recorded twice, and each page's last version is its frozen text.
        assert db.execute("SELECT target_id, from_version_id FROM changes GROUP BY target_id, from_version_id "
                          "HAVING count(*) > 1").fetchall() == []
        for i in range(TARGETS):
            shown = workspace.json("show", f"p{i:02d}")["blocks"]
            assert any(f"revision {pages.rev(i)}:" in block for block in shown), (i, shown)

        # Every change has its alert, and every alert reached the receiver: none lost.
        changes = db.execute("SELECT c.id, a.id, a.state, a.redelivered FROM changes c LEFT JOIN events e "
                             "ON e.change_id = c.id LEFT JOIN alerts a ON a.event_id = e.id "
                             "WHERE c.kind != 'first'").fetchall()
        assert changes and all(alert is not None and state == "sent" for _, alert, state, _ in changes)
        received = Counter(hook.received)
        lost = [alert for _, alert, _, _ in changes if alert not in received]
        assert lost == [], f"{len(lost)} alerts never arrived"

        # Repeats happen only where a kill cut a send short, and each one is counted.
        redelivered = {alert: n for _, alert, _, n in changes}
        repeats = {alert: n - 1 for alert, n in received.items() if n > 1}
        print(f"\n{KILLS} kills: {db.execute('SELECT count(*) FROM versions').fetchone()[0]} versions, "
              f"{len(changes)} changes and alerts, {len(files)} snapshot files; "
              f"{sum(repeats.values())} alerts received twice, {sum(redelivered.values())} sends counted as repeats")
        assert sum(repeats.values()) <= KILLS
        assert all(redelivered[alert] >= n for alert, n in repeats.items()), (repeats, redelivered)
        db.close()
    finally:
        hook.close()


def test_an_alert_sent_by_a_killed_process_is_sent_again_and_counted(server, workspace):
    """A `monitor check` killed while its webhook was being delivered (the receiver has the
    alert, the sender never heard back): the next run sends it again, and `monitor alerts`
    shows it was redelivered."""
    server.set("/post", page(1, 1))
    hook = WebhookReceiver()
    hook.answer.clear()
    try:
        workspace.write_config(config(server, hook.url("/hook"), [("post", "/post")], kinds='["first"]'))
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        proc = subprocess.Popen([sys.executable, "-m", "monitor", "check", "--config", str(workspace.config)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        wait_for(lambda: hook.received, timeout=30)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        hook.answer.set()
        assert "alerts: 1 sent" in workspace.run("check").stdout
        assert hook.received == [1, 1]
        [alert] = workspace.json("alerts")
        assert (alert["state"], alert["redelivered"]) == ("sent", 1)
        assert "redelivered 1" in workspace.run("alerts").stdout
    finally:
        hook.close()
