"""The daemon (`monitor run`) as a real process: interval checks, clean stop with checks in flight,
reload on SIGHUP and on an edited targets.toml, a schedule that survives restarts, and hostile
pages that cost a check, never the daemon."""
from __future__ import annotations

import signal
import time

import blog
from conftest import Page, checked, daemon_config as config, history, wait_for

def test_daemon_checks_on_interval_and_stops_cleanly(server, workspace, daemon_factory):
    server.set("/post", blog.post(seed=0))
    workspace.write_config(config(server, ["post"]))
    daemon = daemon_factory()
    wait_for(lambda: checked(workspace, "post"))

    server.set("/post", blog.post([p for p in blog.PARAGRAPHS if p != blog.ICE], seed=1))
    h = wait_for(lambda: (h := history(workspace, "post")) and len(h["changes"]) == 2 and h)
    assert h["changes"][0]["kind"] == "removed"
    server.set("/post", blog.post(seed=2))
    h = wait_for(lambda: (h := history(workspace, "post")) and len(h["changes"]) == 3 and h)
    assert h["changes"][0]["kind"] == "restored" and h["changes"][0]["restored_version"] == 1

    assert workspace.run("health").stdout.startswith("ok: daemon heartbeat")
    assert daemon.stop() == 0
    assert "stopped" in daemon.output()
    # Stopped is not healthy, at once (not 60 s later, when the heartbeat would have gone stale).
    down = workspace.run("health", expect=1)
    assert "no daemon heartbeat" in down.output + (down.stderr or "")


def test_sigterm_lets_the_check_in_flight_finish(server, workspace, daemon_factory):
    def slow(handler):
        time.sleep(2)
        body = b"<html><body><article><p>Slow but complete.</p></article></body></html>"
        handler.send_response(200)
        handler.send_header("Content-Type", "text/html")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    server.set("/slow", Page(handler=slow))
    workspace.write_config(config(server, ["slow"], interval="1h"))
    daemon = daemon_factory()
    wait_for(lambda: any(path == "/slow" for path, _ in server.requests))
    daemon.signal(signal.SIGTERM)
    assert daemon.stop() == 0
    h = history(workspace, "slow")
    assert h["versions"][0]["version"] == 1 and "waiting for 1 checks in flight" in daemon.output()


def test_reload_on_sighup_and_on_edited_config(server, workspace, daemon_factory):
    for name in ("a", "b", "c"):
        server.set(f"/{name}", f"<html><body><article><p>Page {name}.</p></article></body></html>")
    workspace.write_config(config(server, ["a"]))
    daemon = daemon_factory()
    wait_for(lambda: checked(workspace, "a"))

    workspace.write_config(config(server, ["a", "b"]))
    daemon.signal(signal.SIGHUP)
    wait_for(lambda: checked(workspace, "b"))

    # A broken edit is refused with a clear log line; the daemon keeps the targets it had.
    workspace.config.write_text(workspace.config.read_text() + "\n[[targets]]\nname = 'broken'\n")
    wait_for(lambda: "not reloading" in daemon.output() and "'url': Field required" in daemon.output())
    assert daemon.proc.poll() is None

    # Saving the file is enough: no signal needed. Removing a target stops its checks.
    workspace.write_config(config(server, ["a", "c"]))
    wait_for(lambda: checked(workspace, "c"))
    time.sleep(1.5)
    b_requests = sum(1 for path, _ in server.requests if path == "/b")
    time.sleep(2.5)
    assert sum(1 for path, _ in server.requests if path == "/b") == b_requests
    assert daemon.stop() == 0


def test_restart_resumes_the_schedule_instead_of_firing_everything(server, workspace, daemon_factory):
    server.set("/a", "<html><body><article><p>Page a.</p></article></body></html>")
    server.set("/b", "<html><body><article><p>Page b.</p></article></body></html>")
    workspace.write_config(config(server, ["a"], interval="1h"))
    first = daemon_factory()
    wait_for(lambda: checked(workspace, "a"))
    assert first.stop() == 0
    assert [path for path, _ in server.requests] == ["/a"]

    # Restart with a second, never-checked target: it is due now; "a" is not due for an hour.
    workspace.write_config(config(server, ["a", "b"], interval="1h"))
    second = daemon_factory()
    wait_for(lambda: checked(workspace, "b"))
    time.sleep(2)
    assert [path for path, _ in server.requests] == ["/a", "/b"]
    due = history(workspace, "a")["target"]["next_due"]
    assert due > history(workspace, "a")["target"]["last_check"]
    assert second.stop() == 0


def test_hostile_pages_cost_a_check_not_the_daemon(server, workspace, daemon_factory):
    def loop(handler):
        handler.send_response(302)
        handler.send_header("Location", "/loop?again")
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    def flood(handler):
        handler.send_response(200)
        handler.send_header("Content-Type", "text/html")
        handler.end_headers()
        try:
            for _ in range(200):
                handler.wfile.write(b"<p>" + b"y" * 65536)
        except (BrokenPipeError, ConnectionResetError):
            pass
        handler.close_connection = True

    server.set("/loop", Page(handler=loop))
    server.set("/flood", Page(handler=flood))
    server.set("/fine", "<html><body><article><p>Fine.</p></article></body></html>")
    workspace.write_config(config(server, ["loop", "flood", "fine"]))
    daemon = daemon_factory()
    wait_for(lambda: (h := history(workspace, "fine")) and h["checks"] and h["checks"][0]["count"] >= 3, timeout=20)
    assert daemon.proc.poll() is None
    assert "too many redirects" in history(workspace, "loop")["target"]["last_error"]
    assert "body too large" in history(workspace, "flood")["target"]["last_error"]
    assert daemon.stop() == 0


def test_overdue_targets_are_spread_not_fired_at_once():
    from datetime import datetime, timedelta, timezone

    from monitor.config import Target
    from monitor.scheduler import OVERDUE_SPREAD, first_runs

    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    targets = [Target(name=f"t{i}", url=f"https://example.org/{i}") for i in range(12)]
    due = {f"t{i}": now - timedelta(hours=1) for i in range(10)}  # overdue after a long stop
    due["t10"] = now + timedelta(minutes=7)  # not due yet: keeps its time
    due["t11"] = None  # never checked
    runs = first_runs(targets, due, lambda t: 900.0, now)
    assert runs["t10"] == now + timedelta(minutes=7)
    overdue = sorted(runs[f"t{i}"] for i in list(range(10)) + [11])
    assert len(set(overdue)) == 11, "no two overdue targets start together"
    assert overdue[0] == now and overdue[-1] < now + timedelta(seconds=OVERDUE_SPREAD)
    gaps = {round((b - a).total_seconds(), 3) for a, b in zip(overdue, overdue[1:])}
    assert len(gaps) == 1, "evenly spread"


def test_two_daemons_on_one_database_check_each_target_once_between_them(server, workspace, daemon_factory):
    """The due time in the database decides what is checked, not a schedule inside each process:
    two daemons on one database (a second one for throughput, or one started twice by mistake)
    share the targets, and a target one of them just checked is not checked again by the other."""
    server.set("/post", "<html><body><article><p>One page, two daemons.</p></article></body></html>")
    workspace.write_config(config(server, ["post"], interval="1h"))
    first, second = daemon_factory(), daemon_factory()
    wait_for(lambda: checked(workspace, "post"))
    time.sleep(3)  # both have looked for due targets many times since
    assert [path for path, _ in server.requests] == ["/post"]
    codes = first.stop(), second.stop()
    assert codes == (0, 0), f"exit codes {codes}:\n{first.output()[-3000:]}\n---\n{second.output()[-3000:]}"
