"""Two `monitor run` workers on one PostgreSQL, as on two machines: a host's request limit, its
spacing and a pause it asks for (429 Retry-After) hold for both together; `monitor workers`,
`monitor health` and the Prometheus metrics (a worker's own port and the web server's /metrics)
tell an operator what the fleet is doing, and what became of a worker killed with -9."""
from __future__ import annotations

import re
import signal
import threading
import time

import httpx

import blog
import story
from conftest import Page, free_port, wait_for
from test_postgres import postgres  # noqa: F401  (the fixture)

PER_HOST = 2
DELAY = 0.25  # [monitor] host_delay, seconds
ANSWER = 0.3  # seconds the server takes over each page
PAUSE = 2  # seconds of the Retry-After the server sends once
NAMES = [f"post{i}" for i in range(8)]


class Traffic:
    """What the one watched host saw: each request's start, and the most in flight at once."""

    def __init__(self):
        self.lock = threading.Lock()
        self.in_flight = self.most = 0
        self.starts: list[float] = []
        self.paused_at: float | None = None

    def page(self, seed: int, pause: bool = False) -> Page:
        body = blog.post(seed=seed).encode()

        def handle(request) -> None:
            with self.lock:
                self.in_flight += 1
                self.most = max(self.most, self.in_flight)
                self.starts.append(time.monotonic())
                ask = pause and self.paused_at is None and len(self.starts) > 12
            try:
                time.sleep(ANSWER)
                status, headers = (429, {"Retry-After": str(PAUSE)}) if ask else (200, {})
                request.send_response(status)
                for key, value in {"Content-Type": "text/html; charset=utf-8", **headers}.items():
                    request.send_header(key, value)
                payload = b"slow down" if ask else body
                request.send_header("Content-Length", str(len(payload)))
                request.end_headers()
                request.wfile.write(payload)
                if ask:
                    self.paused_at = time.monotonic()
            finally:
                with self.lock:
                    self.in_flight -= 1

        return Page(handler=handle)


def test_two_workers_share_hosts_limits_and_pauses_and_report_themselves(postgres, server, workspace,  # noqa: F811
                                                                         daemon_factory):
    database = postgres.create_database("fleet")
    traffic = Traffic()
    for i, name in enumerate(NAMES):
        server.set(f"/{name}", traffic.page(i, pause=i == 0))
    metrics_port = free_port()
    targets = "".join(f'\n[[targets]]\nname = "{n}"\nurl = "{server.url("/" + n)}"\n' for n in NAMES)
    workspace.write_config(f"""
[monitor]
database = "{database}"
snapshots = "database"
interval = "1s"
jitter = 0
retries = 0
calibrate = false
timeout = "3s"
per_host = {PER_HOST}
host_delay = "{DELAY}s"
metrics_port = {metrics_port}
{targets}""")
    first, second = daemon_factory(), daemon_factory()
    wait_for(lambda: traffic.paused_at is not None and len(traffic.starts) >= 30, timeout=60)

    # Both workers are alive and working, each under its own identity.
    listed = {w["pid"]: w for w in workspace.json("workers")}
    assert set(listed) >= {first.proc.pid, second.proc.pid}, listed
    for daemon in (first, second):
        w = listed[daemon.proc.pid]
        assert w["state"] == "live" and w["checks"] > 0 and w["beat_age"] < 10, w
    table = workspace.run("workers").output
    assert re.search(rf"^\S+:{first.proc.pid}:\d+ +live ", table, re.M), table
    assert workspace.run("health").output.startswith("ok: daemon heartbeat")

    # The host saw no more than per_host requests at once, from both workers together, ...
    assert traffic.most <= PER_HOST, traffic.most
    # ...no two starts closer than host_delay (less a little for the way from the gate to the server), ...
    with traffic.lock:
        starts = list(traffic.starts)
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    assert min(gaps) >= DELAY * 0.6, sorted(gaps)[:5]
    # ...and nothing at all while it asked for a pause, whichever worker it asked.
    during = [t - traffic.paused_at for t in starts if traffic.paused_at + 0.25 < t < traffic.paused_at + PAUSE - 0.25]
    assert during == [], during

    # A worker's own metrics port (the second worker found it taken, said so, and runs on).
    text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text
    assert re.search(r'^monitor_checks_total\{outcome="unchanged"\} [1-9]', text, re.M), text
    assert re.search(r"^monitor_fetch_bytes_total [1-9]", text, re.M)
    assert re.search(r'^monitor_workers\{state="live"\} 2\.0$', text, re.M)
    for name in ("monitor_alerts_pending", "monitor_alert_oldest_pending_seconds", "monitor_hosts_paused",
                 'monitor_leases{kind="targets",state="held"}', "monitor_check_seconds_bucket"):
        assert name in text, name
    assert wait_for(lambda: "cannot serve metrics" in first.output() + second.output())

    # One worker killed with -9: listed as gone at once, with what it held; the other carries on.
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait(10)
    gone = {w["pid"]: w for w in workspace.json("workers")}[first.proc.pid]
    assert gone["state"] == "gone", gone
    checks = listed[second.proc.pid]["checks"]
    wait_for(lambda: {w["pid"]: w for w in workspace.json("workers")}[second.proc.pid]["checks"] > checks + 8,
             timeout=30)
    fleet = workspace.run("health", "--fleet").output
    assert "fleet: 1 worker live, 1 stale" in fleet and "ok: the fleet keeps up" in fleet, fleet

    # The web server's /metrics reads the same fleet.
    ui = story.UI(workspace)
    try:
        text = ui.get("/metrics").text
    finally:
        ui.close()
    assert re.search(r'^monitor_workers\{state="live"\} 1\.0$', text, re.M), text

    # The last worker stops: this machine has no live daemon any more, and says so.
    assert second.stop() == 0
    down = workspace.run("health", expect=1)
    assert "no live worker on this machine" in down.output, down.output
    assert second.proc.pid not in {w["pid"] for w in workspace.json("workers")}  # a clean stop leaves no row
