"""The fleet under way: three `monitor run` workers on one PostgreSQL, as on three machines, over
2,000 targets on loopback hosts checked every minute, for two and a half minutes. Once every
target has its first version, some pages are edited; twice while their alerts go out, the worker
that is sending one is killed with -9 (the receiver holds the alert, unanswered) and started
again. What the operator of a fleet counts on:

- every target is checked on schedule: a first time within its first interval, then every
  interval, never late by more than LATE, and never sooner than its interval except where a check
  was cut short by a kill and is done again;
- never two checks of one target at once (the page servers record each request's start and end);
- each edit recorded once, and every alert delivered;
- an alert delivered twice is counted in its `redelivered`, and only an alert whose send a kill
  cut short is delivered twice.

Real processes and the real CLI, a real PostgreSQL (tests/test_postgres.py), page servers and a
webhook receiver on 127.0.0.1."""
from __future__ import annotations

import signal
import time
from collections import Counter, defaultdict

from conftest import Daemon, wait_for
from test_crash import WebhookReceiver
from test_overlap import page
from test_polite import Site
from test_postgres import postgres  # noqa: F401  (the fixture)

TARGETS = 2000
HOSTS = 8
INTERVAL = 60.0  # seconds
LATE = 10.0  # seconds a check may start after it is due (the dispatcher's look on a busy machine)
RUN = 135.0  # seconds from the fleet's first check to the end of the run
EDITS = 60  # pages edited once all have a first version (their alerts go out over the next interval)
KILLS = 2
CUT_SHORT = 10.0  # seconds before a kill in which a check of the killed worker may be redone
ANSWER = 0.02  # seconds each page takes to answer, so that two requests at once would overlap


class Pages:
    """HOSTS page servers on 127.0.0.1 (tests/test_polite.py's Site, which records each request's
    start and end), 2,000 pages among them."""

    def __init__(self):
        self.revs = [0] * TARGETS
        self.sites = [Site(self.answer) for _ in range(HOSTS)]

    def answer(self, path: str, n: int):
        if not path.startswith("/p/"):
            return 404, {}, b"no"
        i = int(path.rsplit("/", 1)[1])
        time.sleep(ANSWER)
        return 200, {}, page(1000 + i, self.revs[i])  # (a short page saying "Post 404" reads as an error page)

    def url(self, i: int) -> str:
        return self.sites[i % HOSTS].url(f"/p/{i}")

    def requests(self) -> dict[str, list[tuple[float, float]]]:
        """Each page's requests, (start, end), in order."""
        spans = defaultdict(list)
        for site in self.sites:
            for r in list(site.requests):
                if r.path.startswith("/p/"):
                    spans[r.path].append((r.start, r.end))
        return {path: sorted(s) for path, s in spans.items()}

    def close(self) -> None:
        for site in self.sites:
            site.close()


CONFIG = """
[monitor]
database = "{database}"
snapshots = "database"
interval = "{interval:g}s"
jitter = 0
retries = 0
calibrate = false
timeout = "10s"
concurrency = 16
per_host = 4
alert_retry = "1s"
alerts = ["hook"]

[alerts.hook]
type = "webhook"
url = "{hook}"
kinds = ["added", "removed", "edited", "restored"]
"""


def test_three_workers_keep_schedule_through_kills_and_send_every_alert(postgres, workspace):  # noqa: F811
    database = postgres.create_database("soak")
    pages, hook = Pages(), WebhookReceiver()
    workers: list[Daemon] = []
    try:
        workspace.write_config(CONFIG.format(database=database, interval=INTERVAL, hook=hook.url("/hook")) + "".join(
            f'\n[[targets]]\nname = "t{i:04d}"\nurl = "{pages.url(i)}"\nlearn = false\n' for i in range(TARGETS)))
        workers += [Daemon(workspace, f"worker-{n}.log") for n in range(3)]
        kills: list[tuple[float, set[int]]] = []  # when, and the alerts the killed worker was sending

        def kill_the_sender() -> None:
            """Hold the receiver's answers until an alert arrives, kill -9 the worker sending it
            (with the alerts it has under way), start another, and answer again."""
            hook.answer.clear()
            seen = len(hook.received)
            wait_for(lambda: len(hook.received) > seen, timeout=INTERVAL + LATE)
            alert = hook.received[seen]
            [(holder,)] = postgres.query("soak", "SELECT claimed_by FROM alerts WHERE id = %s", alert)
            [victim] = [w for w in workers if w.proc.poll() is None and f":{w.proc.pid}:" in holder]
            sending = {i for (i,) in postgres.query(
                "soak", "SELECT id FROM alerts WHERE claimed_by = %s AND sending_at IS NOT NULL", holder)}
            victim.proc.send_signal(signal.SIGKILL)
            victim.proc.wait(10)
            kills.append((time.monotonic(), sending))
            assert alert in sending
            workers.append(Daemon(workspace, f"worker-{len(workers)}.log"))
            hook.answer.set()

        # Every target is checked a first time within its first interval (new targets are spread
        # over it); then pages are edited, and the sender of an alert is killed, twice.
        wait_for(pages.requests, timeout=60)
        start = time.monotonic()
        wait_for(lambda: len(pages.requests()) == TARGETS, timeout=INTERVAL + LATE, interval=0.5)
        for i in range(EDITS):
            pages.revs[i] += 1
        for _ in range(KILLS):
            kill_the_sender()
        time.sleep(max(0.0, start + RUN - time.monotonic()))
        end = time.monotonic()

        # Each edit is recorded once and every alert is delivered; then the workers stop cleanly.
        def settled():
            [(changes, unsent)] = postgres.query("soak", "SELECT (SELECT count(*) FROM changes WHERE from_version_id "
                                                 "IS NOT NULL), (SELECT count(*) FROM alerts WHERE state <> 'sent')")
            return changes >= EDITS and unsent == 0
        wait_for(settled, timeout=60, interval=0.5)
        live = [w for w in workers if w.proc.poll() is None]
        assert len(live) == 3, [w.output()[-2000:] for w in workers if w.proc.poll() is not None]
        for w in live:
            assert w.stop(timeout=60) == 0, w.output()[-3000:]

        versions = {f"t{i:04d}": 2 if i < EDITS else 1 for i in range(TARGETS)}  # the first, and the edit
        recorded = dict(postgres.query("soak", "SELECT t.name, count(*) FROM versions v JOIN targets t "
                                               "ON t.id = v.target_id GROUP BY t.name"))
        wrong = sorted(n for n in versions if recorded.get(n) != versions[n])
        assert wrong == [], [(n, recorded.get(n), postgres.query(
            "soak", "SELECT status, last_outcome, last_error, next_due_at, claimed_by FROM targets WHERE name = %s", n),
            [(round(a - start, 2), round(b - start, 2)) for a, b in pages.requests()[f"/p/{int(n[1:])}"]])
            for n in wrong[:5]]
        alerts = {i: (state, redelivered) for i, state, redelivered in
                  postgres.query("soak", "SELECT id, state, redelivered FROM alerts")}
        assert len(alerts) == EDITS and {s for s, _ in alerts.values()} == {"sent"}, alerts
        delivered = Counter(hook.received)
        assert set(delivered) == set(alerts), set(alerts) ^ set(delivered)
        # An alert delivered twice is counted, and was under way at a kill; the alert held at
        # each kill was delivered twice, so this is not vacuous.
        cut_short = set().union(*(sending for _, sending in kills))
        for alert, times in delivered.items():
            if times > 1:
                assert alerts[alert][1] >= times - 1 and alert in cut_short, (alert, times, alerts[alert])
        assert all(alert in cut_short for alert, (_, redelivered) in alerts.items() if redelivered), alerts
        assert len(kills) == KILLS and all(any(delivered[a] >= 2 for a in sending) for _, sending in kills), kills

        # On schedule, and never two checks of one target at once.
        kill_times = [at for at, _ in kills]
        late, early, overlaps, gaps = [], [], [], []
        requests = pages.requests()
        began = min(spans[0][0] for spans in requests.values())  # the fleet's first check
        for path, spans in requests.items():
            starts = [s for s, _ in spans]
            if starts[0] > began + INTERVAL + LATE:
                late.append((path, "first", round(starts[0] - began, 1)))
            for (a, a_end), (b, _) in zip(spans, spans[1:]):
                gaps.append(b - a)
                if b < a_end:
                    overlaps.append((path, round(a - start, 2), round(b - start, 2)))
                if b - a > INTERVAL + LATE:
                    late.append((path, round(a - start, 1), round(b - a, 1)))
                elif b - a < INTERVAL - 1 and not any(a <= k <= a + CUT_SHORT for k in kill_times):
                    early.append((path, round(a - start, 1), round(b - a, 1)))
            if end - starts[-1] > INTERVAL + LATE:
                late.append((path, "last", round(end - starts[-1], 1)))
        print(f"soak: {sum(map(len, requests.values())):,} checks of {len(requests):,} targets in "
              f"{end - began:.0f} s; gaps between checks of a target {min(gaps):.1f}-{max(gaps):.1f} s "
              f"(interval {INTERVAL:g} s); {len(kills)} kills; {len(alerts)} alerts, "
              f"{sum(delivered.values()) - len(delivered)} delivered twice")
        assert overlaps == [], overlaps[:10]
        assert late == [], (len(late), late[:10])
        assert early == [], (len(early), early[:10])
    finally:
        for w in workers:
            if w.proc.poll() is None:
                w.proc.kill()
                w.proc.wait()
            w.log.close()
        pages.close()
        hook.close()
