"""Work is claimed in the database, so that processes sharing it never do one piece twice: on
PostgreSQL two workers looking for due targets at the same moment each take different ones, without
waiting for the other's rows (FOR UPDATE SKIP LOCKED); a site's discovery is claimed like a check,
and a discovery another process is running is left to it. The real store on a real PostgreSQL,
the real CLI in a second process, a blog on a loopback server."""
from __future__ import annotations

import threading
from datetime import timedelta

from test_postgres import postgres  # noqa: F401  (the fixture)
from test_sites import blog, config  # noqa: F401  (the fixture)

from monitor import config as settings_of
from monitor.app import open_store
from monitor.models import utcnow
from monitor.store import Store, Watched

TARGETS = 60
EACH = 20  # targets each worker's look reads and claims


def test_two_workers_looking_at_once_take_different_targets_without_waiting(postgres):  # noqa: F811
    database = postgres.create_database("claims")
    first, second = Store.open(database, None), Store.open(database, None)
    try:
        states = first.sync_targets([Watched(f"post-{i:02d}", f"http://127.0.0.1:9/{i}", 900.0)
                                     for i in range(TARGETS)], [])
        soonest = sorted(states.values(), key=lambda s: s.name)  # due one second apart, in this order
        now = utcnow()
        first.set_due({s.id: now - timedelta(seconds=TARGETS - i) for i, s in enumerate(soonest)})
        holding, go = threading.Event(), threading.Event()
        taken: dict[str, list[int]] = {}

        def slow_pick(rows):  # the first worker's look holds its rows' locks until `go`
            holding.set()
            go.wait(30)
            return [r.id for r in rows]

        def look(name: str, store: Store, pick) -> None:
            taken[name] = sorted(store.claim_due(utcnow(), pick, limit=EACH, sites={}))

        a = threading.Thread(target=look, args=("first", first, slow_pick))
        a.start()
        assert holding.wait(30)
        b = threading.Thread(target=look, args=("second", second, lambda rows: [r.id for r in rows]))
        b.start()
        b.join(30)
        blocked = b.is_alive()
        go.set()
        a.join(30)
        b.join(30)
        assert not blocked, "the second worker waited for the rows the first was claiming"
        assert taken["first"] == sorted(s.id for s in soonest[:EACH])
        assert taken["second"] == sorted(s.id for s in soonest[EACH:2 * EACH])  # the next ones, none of the first's
    finally:
        first.close()
        second.close()


def test_a_discovery_another_process_runs_is_left_to_it(workspace, blog, server):  # noqa: F811
    workspace.write_config(config(blog))
    workspace.run("sites")  # the site's row
    store = open_store(settings_of.load(workspace.config))
    try:
        [site] = store.claim_sites(utcnow(), ["corp"])  # this test's process is discovering it
        feed_reads = len([p for p, _ in server.requests if p.startswith("/feed")])
        done = workspace.subprocess("sites", "--discover")
        assert done.returncode == 0, done.stderr
        assert "corp: being discovered by another process" in done.stdout, done.stdout
        assert len([p for p, _ in server.requests if p.startswith("/feed")]) == feed_reads
        mine = [w for w in workspace.json("workers") if w["sites"]]
        assert [(w["state"], w["sites"]) for w in mine] == [("no heartbeat", 1)], mine
        store.release_site(site.id)
    finally:
        store.close()
    done = workspace.subprocess("sites", "--discover")
    assert "corp: 4 posts listed, 4 new" in done.stdout, done.stdout + done.stderr
