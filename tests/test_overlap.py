"""Two `monitor check` processes at once on one database (two cron jobs that overlap, or a cron
job beside a daemon): each target is checked by one process at a time, so every edit is recorded
once and every alert sent once, and the process that finds targets taken says so.

Real processes, the real CLI, a real SQLite file (and a real PostgreSQL server), pages on a
loopback server and a loopback webhook receiver. Each round, the page server holds its answers until each of the two processes
has either sent a request or exited: a process that took the targets is then surely still holding
them when the other looks (no timing luck), and a process that found nothing to take exits and
releases the other."""
from __future__ import annotations

import os
import random
import re
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter

import pytest
from conftest import ROOT, Page
from test_postgres import postgres  # noqa: F401  (the fixture: a throwaway PostgreSQL server)

TARGETS = 80
EDITS_PER_ROUND = 10
CONFIG = """
[monitor]
database = "{database}"
user_agent = "${{MONITOR_UA}}"
retries = 0
calibrate = false
timeout = "20s"
concurrency = 16
per_host = 16
workers = {workers}
alert_wait = "1s"
alerts = ["hook"]

[alerts.hook]
type = "webhook"
url = "{hook}"
"""
TARGET = """
[[targets]]
name = "post-{i:03d}"
url = "{url}"
learn = false
"""


def page(i: int, rev: int) -> bytes:
    words = " ".join(f"word{(i * 7 + rev * 13 + k) % 97}" for k in range(12))
    return (f"<html><body><article><h1>Post {i}</h1><p>Post {i} says, in revision {rev}: {words}.</p>"
            f"<p>A second paragraph of post {i} that never changes.</p></article></body></html>").encode()


def send_page(handler, body: bytes) -> None:
    """Answer 200 with an HTML page, without the Nagle delay between headers and body."""
    handler.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    handler.send_response(200)
    handler.send_header("Content-Type", "text/html; charset=utf-8")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


class GatedPages:
    """The pages' current revisions, answered once the gate is open; records who asked."""

    def __init__(self, server):
        self.revs = [0] * TARGETS
        self.gate = threading.Event()
        self.agents: set[str] = set()
        for i in range(TARGETS):
            server.set(f"/post/{i}", Page(handler=self.answer))

    def answer(self, handler) -> None:
        self.agents.add(handler.headers.get("User-Agent", ""))
        self.gate.wait(60)
        i = int(handler.path.rsplit("/", 1)[1])
        send_page(handler, page(i, self.revs[i]))


def start(workspace, agent: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT), MONITOR_UA=agent)
    return subprocess.Popen([sys.executable, "-m", "monitor", "check", "--config", str(workspace.config)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


def run_together(pages: GatedPages, workspace) -> list[str]:
    """Start two `monitor check` processes at once; open the page gate once each has asked for a
    page or exited. Returns their outputs; both must exit 0."""
    pages.gate.clear()
    pages.agents.clear()
    procs = {agent: start(workspace, agent) for agent in ("proc-a", "proc-b")}
    deadline = time.monotonic() + 60
    while not all(a in pages.agents or p.poll() is not None for a, p in procs.items()):
        assert time.monotonic() < deadline, "the two processes neither asked for a page nor exited"
        time.sleep(0.02)
    pages.gate.set()
    outputs = []
    for agent, proc in procs.items():
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0, f"{agent} exited {proc.returncode}:\n{out}"
        outputs.append(out)
    return outputs


def counts(out: str) -> tuple[int, int]:
    """(targets checked, targets skipped because another process held them) from one output."""
    checked = re.search(r"^checked (\d+) targets", out, re.M)
    skipped = re.search(r"^skipped (\d+) targets? being checked by another process$", out, re.M)
    return int(checked.group(1)) if checked else 0, int(skipped.group(1)) if skipped else 0


@pytest.mark.parametrize("kind, rounds", [("sqlite", (1, 2, 1)), ("postgresql", (2,))])
def test_two_overlapping_checks_record_each_edit_and_send_each_alert_once(kind, rounds, request, server, workspace,
                                                                           receiver):
    """Rounds of: a few pages edited, then two `monitor check` at once (each forking `workers`
    processes); the same claims on SQLite and on PostgreSQL."""
    rng = random.Random(10)
    pages = GatedPages(server)
    targets = "".join(TARGET.format(i=i, url=server.url(f"/post/{i}")) for i in range(TARGETS))
    if kind == "sqlite":
        database = f"sqlite:///{workspace.path / 'monitor.db'}"

        def query(sql: str) -> list[tuple]:
            with sqlite3.connect(workspace.path / "monitor.db") as db:
                return db.execute(sql).fetchall()
    else:
        postgres = request.getfixturevalue("postgres")
        database = postgres.create_database("monitor_overlap")

        def query(sql: str) -> list[tuple]:
            return postgres.query("monitor_overlap", sql)

    def configure(workers: int) -> None:
        workspace.write_config(CONFIG.format(database=database, workers=workers, hook=receiver.url("/hook")) + targets)

    configure(1)
    pages.gate.set()
    baseline = start(workspace, "baseline")
    out, _ = baseline.communicate(timeout=120)
    assert baseline.returncode == 0 and f"checked {TARGETS} targets: {TARGETS} first" in out, out

    edits = Counter()  # target index -> edits made to its page so far
    history = {i: [0] for i in range(TARGETS)}  # each target's revisions, in order
    for round_no, workers in enumerate(rounds, 1):
        configure(workers)
        for i in rng.sample(range(2 * EDITS_PER_ROUND), EDITS_PER_ROUND):
            # Some edits put back an earlier text (a restore), the rest are new text.
            earlier = sorted(set(history[i]) - {history[i][-1]})
            rev = rng.choice(earlier) if earlier and rng.random() < 0.5 else max(history[i]) + 1
            history[i].append(rev)
            pages.revs[i] = rev
            edits[i] += 1
        outputs = run_together(pages, workspace)

        # Each edit recorded exactly once: no two changes from the same version, and as many
        # changes per target as edits made to its page.
        doubled = query("SELECT t.name, c.from_version_id, count(*) FROM changes c JOIN targets t "
                             "ON t.id = c.target_id WHERE c.kind != 'first' GROUP BY t.name, "
                             "c.from_version_id HAVING count(*) > 1")
        assert not doubled, f"round {round_no}: edits recorded twice: {doubled[:5]}"
        recorded = dict(query("SELECT t.name, count(*) FROM changes c JOIN targets t ON t.id = c.target_id "
                              "WHERE c.kind != 'first' GROUP BY t.name"))
        assert recorded == {f"post-{i:03d}": n for i, n in edits.items()}, f"round {round_no}"
        kinds = Counter(k for (k,) in query("SELECT kind FROM changes WHERE kind != 'first'"))
        alerts = query("SELECT id, state FROM alerts")

        # Every alert was received exactly once, and each is marked sent.
        received = Counter(body["alert_id"] for body in receiver.delivered("/hook"))
        assert [a for a, n in received.items() if n > 1] == [], f"round {round_no}: alerts sent twice"
        assert sorted(received) == sorted(a for a, _ in alerts) and len(received) == sum(edits.values())
        assert {state for _, state in alerts} == {"sent"}

        # Every target was checked, by one process at a time; a process that found targets
        # taken said so, naming how many.
        per_process = [counts(out) for out in outputs]
        assert all(checked + skipped == TARGETS for checked, skipped in per_process), outputs
        assert sum(checked for checked, _ in per_process) >= TARGETS, outputs
        assert any(skipped for _, skipped in per_process), outputs
    assert kinds["edited"] and (kinds["restored"] or kind != "sqlite"), kinds  # both kinds of edit exercised
