"""The daemon at steady state: sustained checks per second, CPU per check by kind, RSS, and the
time from a change's check to its alert reaching a loopback Slack receiver.

A fleet of N (default 10,000) configured targets ([[targets]] in targets.toml, as a user with that
many pages would write them), each a ~50 KB WordPress-like post (bench/sitegen.py), is served by
a small aiohttp server in its own process, spread over several loopback ports (each port is one
"host" to the fetcher's per-host limits). What each answer is, is decided per target:

  304     the page is unchanged and revalidates: 304 Not Modified           (7 targets in 10)
  chrome  200, the article as before, the page's chrome changed (a nonce, a trending box)
                                                                            (2 in 10)
  edit    200, a real edit: a sentence added to one paragraph of the article (1 in 10)

Steps:
  1. baseline: `monitor check` over every target (first versions; the server answers a stable
     page), then every target is made due;
  2. `monitor run` with `--interval` short enough that the daemon never runs out of due targets
     (10,000 every 15 s offers 667 checks/s): the rate it reaches is what it can sustain;
  3. after a warm-up, a measured window of the mix; then, with the server switched to answer
     every target one way, a window of each kind alone: CPU per check by kind is the monitor
     process's CPU time in that window over the checks made in it;
  4. SIGTERM; the alerts the receiver got are matched with their events in the database.

The monitor process's CPU is measured apart from the server's (and this harness's): they share
the machine's cores, and the report says whether the monitor's CPU or the machine bounds the rate.
This is a measurement, not a test: the exit status is 0 whether or not the targets are met, 1 when
the harness fails.

Usage: python bench/daemon_rate.py [--targets 10000] [--daemons 1] [--window 60] [--kind-window 20] [--json]
"""
from __future__ import annotations

import argparse
import asyncio
import html
import json
import logging
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import sitegen
from site_scale import _status_kib

REPO_ROOT = Path(__file__).resolve().parent.parent
MIX = ("304",) * 7 + ("chrome",) * 2 + ("edit",)  # target i answers MIX[i % 10]
KINDS = ("304", "chrome", "edit")
BASES = 100  # distinct generated posts; each target's page is one of them with its own title
NAMES = ["Contoso", "Fabrikam", "Northwind"]  # names the edit sentences may mention
TICK = os.sysconf("SC_CLK_TCK")
MB = 1_000_000
TARGETS = {"rate": 300.0, "rss_mb": 150.0, "p99_s": 5.0}  # the targets for 10,000 targets
STOP_TIMEOUT = 60.0


class HarnessError(RuntimeError):
    pass


# --------------------------------------------------------------------------------------------
# The server (its own process: `daemon_rate.py --serve SPEC`)
# --------------------------------------------------------------------------------------------

class Fleet:
    """Every target's page and what it answers. `mode`: stable (the baseline: every page as
    generated), mix (each target answers its own kind), or one kind for every target."""

    def __init__(self, total: int, seed: int, edits: dict[int, int] | None = None):
        self.mode = "stable"
        self.bases = [sitegen.render(sitegen.build_post(seed, i, BASES)) for i in range(BASES)]
        self.slots = [self._paragraph_ends(page) for page in self.bases]
        self.total = total
        self.edits = edits or {}  # target -> its current edit (absent: as generated)
        self.counter = int(time.time() * 1000)  # edits and nonces differ from any earlier run's
        self.served = {kind: 0 for kind in (*KINDS, "full")}

    @staticmethod
    def _paragraph_ends(page: str) -> list[int]:
        start, end = page.index("<article"), page.index("</article>")
        return [start + m.start() for m in re.finditer("</p>", page[start:end])]

    def page(self, i: int) -> str:
        base = i % BASES
        page = self.bases[base].replace("<title>", f"<title>[{i}] ", 1)
        n = self.edits.get(i)
        if n is None:
            return page
        slots = self.slots[base]
        at = slots[n % len(slots)] + len(f"[{i}] ")  # the title's prefix moved everything
        sentence = sitegen.sentence(random.Random(f"{i}:{n}"), NAMES)
        return f"{page[:at]} {sentence}{page[at:]}"

    def answer(self, i: int, etag: str | None) -> tuple[int, str, str]:
        """(status, body, ETag) for target i's request."""
        kind = MIX[i % len(MIX)] if self.mode == "mix" else self.mode
        current = f'"{i}-{self.edits.get(i, 0)}"'
        if kind in ("stable", "304") and etag == current:
            self.served["304"] += 1
            return 304, "", current
        if kind in ("stable", "304"):
            self.served["full"] += 1
            return 200, self.page(i), current
        self.counter += 1
        if kind == "edit":
            self.edits[i] = self.counter
            self.served["edit"] += 1
            return 200, self.page(i), f'"{i}-{self.counter}"'
        self.served["chrome"] += 1
        trending = html.escape(sitegen.title_for(self.counter, self.counter % 1000))
        chrome = (f'<div class="trending-posts widget"><h3>Trending</h3><a href="/t/{self.counter % self.total}">'
                  f'{trending}</a></div><script>var nonce="{self.counter:016x}";</script></body>')
        return 200, self.page(i).replace("</body>", chrome, 1), f'"{i}-c{self.counter}"'


async def serve(spec: dict) -> None:
    from aiohttp import web

    state = Path(spec["state"])  # the edits made, kept for a run that reuses the baseline
    edits = {int(i): n for i, n in json.loads(state.read_text()).items()} if state.exists() else None
    fleet = Fleet(spec["targets"], spec["seed"], edits)

    async def target(request: web.Request) -> web.Response:
        status, body, etag = fleet.answer(int(request.match_info["i"]), request.headers.get("If-None-Match"))
        return web.Response(status=status, text=body or None, content_type="text/html", headers={"ETag": etag})

    async def mode(request: web.Request) -> web.Response:
        fleet.mode = request.match_info["mode"]
        return web.json_response(fleet.served)

    async def stats(request: web.Request) -> web.Response:
        return web.json_response(fleet.served)

    app = web.Application()
    app.add_routes([web.get("/t/{i:\\d+}", target), web.post("/mode/{mode}", mode), web.get("/stats", stats)])
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    for port in spec["ports"]:
        await web.TCPSite(runner, "127.0.0.1", port).start()
    print("ready", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await runner.cleanup()
    state.write_text(json.dumps(fleet.edits))


# --------------------------------------------------------------------------------------------
# The harness
# --------------------------------------------------------------------------------------------

def free_ports(count: int) -> list[int]:
    import socket

    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def cpu_s(pid: int) -> float:
    """A process's CPU time so far (user + system, all its threads), in seconds."""
    with open(f"/proc/{pid}/stat", "rb") as handle:
        fields = handle.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def machine_busy_s() -> float:
    """CPU time the whole machine has spent busy (all cores, all processes), in seconds."""
    with open("/proc/stat") as handle:
        fields = [int(v) for v in handle.readline().split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / TICK  # all but idle and iowait


class Receiver:
    """A loopback Slack incoming webhook: records when each message arrived and what it names."""

    def __init__(self):
        self.got: list[tuple[float, str, int | None]] = []  # (arrival, target, to-version)
        self.url = ""

    async def start(self):
        from aiohttp import web

        async def hook(request: web.Request) -> web.Response:
            body = await request.json()
            arrived = time.time()
            header = body["blocks"][0]["text"]["text"]
            facts = " ".join(e.get("text", "") for b in body["blocks"] if b["type"] == "context"
                             for e in b["elements"])
            seq = re.search(r"v\d+ → v(\d+)", facts)
            self.got.append((arrived, header.rsplit(": ", 1)[-1], int(seq.group(1)) if seq else None))
            return web.Response(text="ok")

        app = web.Application()
        app.add_routes([web.post("/hook", hook)])
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        port = free_ports(1)[0]
        await web.TCPSite(self.runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{port}/hook"

    async def stop(self):
        await self.runner.cleanup()


def write_config(work: Path, total: int, ports: list[int], interval: str, webhook: str) -> Path:
    lines = ["[monitor]", 'database = "sqlite:///monitor.db"', 'snapshots = "snapshots"', f'interval = "{interval}"',
             "calibrate = false", 'alerts = ["slack"]', "", "[alerts.slack]", 'type = "slack"',
             f'webhook_url = "{webhook}"', ""]
    for i in range(total):
        lines += ["[[targets]]", f'name = "t{i:05d}"', f'url = "http://127.0.0.1:{ports[i % len(ports)]}/t/{i}"',
                  "learn = false", ""]
    path = work / "targets.toml"
    path.write_text("\n".join(lines))
    return path


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO_ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


async def http(method: str, url: str) -> dict:
    import aiohttp

    async with aiohttp.ClientSession() as session, session.request(method, url) as response:
        return await response.json()


def make_all_due(work: Path) -> None:
    with sqlite3.connect(work / "monitor.db") as db:
        db.execute("UPDATE targets SET next_due_at = last_check_at")


def event_times(work: Path) -> dict[tuple[str, int], float]:
    """(target, version) -> when the check that found the change began (its event's time)."""
    db = sqlite3.connect(f"file:{work / 'monitor.db'}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT t.name, v.seq, e.created_at FROM events e JOIN changes c ON c.id = e.change_id "
                          "JOIN versions v ON v.id = c.to_version_id JOIN targets t ON t.id = e.target_id").fetchall()
    finally:
        db.close()
    return {(name, seq): datetime.fromisoformat(at).replace(tzinfo=timezone.utc).timestamp()
            for name, seq, at in rows}


def outcome_counts(work: Path, since: float) -> dict[str, int]:
    db = sqlite3.connect(f"file:{work / 'monitor.db'}?mode=ro", uri=True)
    when = datetime.fromtimestamp(since, timezone.utc).replace(tzinfo=None).isoformat(" ")
    try:
        return dict(db.execute("SELECT outcome, count(*) FROM checks WHERE at >= ? GROUP BY outcome", (when,)))
    finally:
        db.close()


def quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Window:
    """CPU and checks over one measured stretch of the daemon's run."""

    def __init__(self, name: str, pids: dict[str, list[int]], stats: dict):
        self.name, self.pids = name, pids
        self.start = time.monotonic()
        self.cpu = {role: sum(map(cpu_s, group)) for role, group in pids.items()}
        self.harness = time.process_time()
        self.machine = machine_busy_s()
        self.stats = stats

    def close(self, stats: dict) -> dict:
        wall = time.monotonic() - self.start
        cpu = {role: sum(map(cpu_s, group)) - self.cpu[role] for role, group in self.pids.items()}
        cpu["harness"] = time.process_time() - self.harness
        cpu["others"] = max(0.0, machine_busy_s() - self.machine - sum(cpu.values()))
        served = {k: stats[k] - self.stats[k] for k in stats}
        checks = sum(served.values())
        return {"window": self.name, "seconds": round(wall, 1), "checks": checks, "served": served,
                "rate": round(checks / wall, 1),
                "cpu_s": {k: round(v, 2) for k, v in cpu.items()},
                "cpu_share": {k: round(v / wall, 3) for k, v in cpu.items()},
                "monitor_cpu_ms_per_check": round(1000 * cpu["monitor"] / checks, 2) if checks else None}


async def benchmark(args, work: Path, log) -> dict:
    spec = work / "server.json"
    reuse = args.reuse and (work / "monitor.db").exists() and spec.exists()
    # The same ports when a baseline is reused: links in the pages name them, so new ports
    # would make every page an edit.
    ports = json.loads(spec.read_text())["ports"] if reuse else free_ports(args.hosts)
    if not reuse:
        (work / "edits.json").unlink(missing_ok=True)
    spec.write_text(json.dumps({"targets": args.targets, "seed": 7, "ports": ports, "state": str(work / "edits.json")}))
    receiver = Receiver()
    await receiver.start()
    logs = work / "logs"
    logs.mkdir(exist_ok=True)
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(spec)], stdout=subprocess.PIPE,
                              stderr=open(logs / "server.stderr", "wb"), cwd=REPO_ROOT)
    daemons: list[subprocess.Popen] = []
    try:
        if (await asyncio.to_thread(server.stdout.readline)).strip() != b"ready":
            raise HarnessError("the page server did not start: " + (logs / "server.stderr").read_text()[-2000:])
        base = f"http://127.0.0.1:{ports[0]}"
        config = write_config(work, args.targets, ports, args.interval, receiver.url)
        command = [sys.executable, "-m", "monitor"]
        if not reuse:
            log(f"baseline: `monitor check` over {args.targets} targets ...")
            started = time.monotonic()
            done = await asyncio.to_thread(subprocess.run, command + ["check", "--config", str(config)], capture_output=True,
                                           cwd=work, env=child_env())
            (logs / "baseline.stderr").write_bytes(done.stderr)
            if done.returncode != 0:
                raise HarnessError(f"monitor check exited {done.returncode}:\n{done.stderr.decode()[-4000:]}")
            log(f"  {time.monotonic() - started:.1f} s")
        make_all_due(work)
        await http("POST", f"{base}/mode/mix")
        log(f"daemon: {args.daemons} x `monitor run`, interval {args.interval}; warm-up {args.warmup:g} s ...")
        started = time.time()
        daemon_log = open(logs / "daemon.stderr", "wb")
        for _ in range(args.daemons):  # several share the due targets through their claims
            daemons.append(subprocess.Popen(command + ["run", "--config", str(config)], stdin=subprocess.DEVNULL,
                                            stdout=daemon_log, stderr=daemon_log, cwd=work, env=child_env()))
        pids = {"monitor": [d.pid for d in daemons], "server": [server.pid]}
        rss: list[tuple[float, int]] = []  # the largest daemon process's VmRSS, each second

        async def sample() -> None:
            while True:
                kib = max(_status_kib(d.pid, "VmRSS") or 0 for d in daemons)
                if kib:
                    rss.append((round(time.time() - started, 1), kib * 1024))
                await asyncio.sleep(1.0)

        sampler = asyncio.create_task(sample())
        await asyncio.sleep(args.warmup)
        if any(d.poll() is not None for d in daemons):
            raise HarnessError("a daemon exited early: " + (logs / "daemon.stderr").read_text()[-2000:])
        windows = []
        mix_from = time.time()
        window = Window("mix", pids, await http("GET", f"{base}/stats"))
        log(f"mix window {args.window:g} s ...")
        await asyncio.sleep(args.window)
        windows.append(window.close(await http("GET", f"{base}/stats")))
        mix_until = time.time()
        for kind in KINDS if args.kind_window else ():
            await http("POST", f"{base}/mode/{kind}")
            await asyncio.sleep(args.settle)
            window = Window(kind, pids, await http("GET", f"{base}/stats"))
            log(f"{kind} window {args.kind_window:g} s ...")
            await asyncio.sleep(args.kind_window)
            windows.append(window.close(await http("GET", f"{base}/stats")))
        await http("POST", f"{base}/mode/304")
        hwm = max((_status_kib(d.pid, "VmHWM") or 0) * 1024 for d in daemons)
        await asyncio.sleep(args.drain)  # let the last alerts go out
        sampler.cancel()
        stop_at = time.monotonic()
        for d in daemons:
            d.send_signal(signal.SIGTERM)
        while any(d.poll() is None for d in daemons):
            if time.monotonic() - stop_at > STOP_TIMEOUT:
                raise HarnessError(f"a daemon did not stop within {STOP_TIMEOUT:.0f} s of SIGTERM")
            await asyncio.sleep(0.1)
        stop_s = time.monotonic() - stop_at
        if any(d.returncode != 0 for d in daemons):
            raise HarnessError(f"a daemon exited with {[d.returncode for d in daemons]}")
    finally:
        for d in daemons:
            if d.poll() is None:
                d.kill()
        server.send_signal(signal.SIGTERM)
        server.wait()
        await receiver.stop()
    events = event_times(work)
    latency = {"mix": [], "all": []}
    unmatched = 0
    for arrived, name, seq in receiver.got:
        at = events.get((name, seq))
        if at is None:
            unmatched += 1
            continue
        latency["all"].append(arrived - at)
        if mix_from <= at < mix_until:
            latency["mix"].append(arrived - at)
    errors = len(re.findall(r"ERROR|Traceback", (logs / "daemon.stderr").read_text(errors="replace")))
    return {"targets": args.targets, "hosts": args.hosts, "interval": args.interval, "daemons": args.daemons,
            "offered_rate": round(args.targets / parse_seconds(args.interval), 1),
            "windows": windows, "rss_peak_mb": round(max(hwm, max((b for _, b in rss), default=0)) / MB, 1),
            "rss_samples_mb": [(t, round(b / MB, 1)) for t, b in rss],
            "alerts": {"received": len(receiver.got), "unmatched": unmatched,
                       **{f"{w}_{q}": (round(v, 3) if (v := quantile(latency[w], p)) is not None else None)
                          for w in latency for q, p in (("p50", 0.5), ("p99", 0.99), ("max", 1.0))},
                       "mix_count": len(latency["mix"])},
            "outcomes_in_run": outcome_counts(work, started), "daemon_error_lines": errors,
            "stop_s": round(stop_s, 1)}


def parse_seconds(text: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600}
    return sum(float(n) * units[u] for n, u in re.findall(r"(\d+(?:\.\d+)?)([smh])", text))


def format_report(r: dict) -> str:
    mix = r["windows"][0]
    out = [f"{r['targets']} configured targets on {r['hosts']} loopback hosts, {r['daemons']} daemon process(es), "
           f"interval {r['interval']} "
           f"(offered {r['offered_rate']:g} checks/s); mix 70% 304 / 20% chrome-only 200 / 10% real edit", "",
           f"{'window':<8} {'s':>5} {'checks':>7} {'checks/s':>9} {'monitor CPU':>12} {'ms/check':>9} "
           f"{'server CPU':>11} {'harness':>8} {'others':>7}"]
    for w in r["windows"]:
        share = w["cpu_share"]
        out.append(f"{w['window']:<8} {w['seconds']:>5.0f} {w['checks']:>7} {w['rate']:>9.1f} "
                   f"{share['monitor'] * 100:>11.0f}% {w['monitor_cpu_ms_per_check'] or 0:>9.2f} "
                   f"{share['server'] * 100:>10.0f}% {share['harness'] * 100:>7.0f}% {share['others'] * 100:>6.0f}%")
    busy = mix["cpu_share"]["monitor"] / r["daemons"]
    total = sum(mix["cpu_share"].values())
    cores = os.cpu_count() or 1
    bound = ("the monitor process's CPU (its event loop at ~100% of a core)" if busy >= 0.9 else
             f"the machine's {cores} cores ({total * 100:.0f}% busy in all, {mix['cpu_share']['others'] * 100:.0f}% "
             "by other processes)" if total >= 0.9 * cores else
             "neither CPU: the offered rate or waiting (latency, limits)")
    a = r["alerts"]
    out += ["", f"rate bound by: {bound}",
            f"daemon RSS peak (largest process) {r['rss_peak_mb']:.1f} MB; stopped {r['stop_s']:.1f} s after SIGTERM; "
            f"{r['daemon_error_lines']} error lines in its log",
            f"alerts received {a['received']} ({a['unmatched']} unmatched); change->alert in the mix window "
            f"({a['mix_count']}): p50 {a['mix_p50']} s, p99 {a['mix_p99']} s, max {a['mix_max']} s; "
            f"whole run: p50 {a['all_p50']} s, p99 {a['all_p99']} s",
            f"checks recorded during the run by outcome: {r['outcomes_in_run']}", ""]
    t = TARGETS
    for label, value, limit, ok in (
            ("sustained checks/s (mix)", mix["rate"], f">= {t['rate']:g}", mix["rate"] >= t["rate"]),
            ("daemon RSS MB", r["rss_peak_mb"], f"<= {t['rss_mb']:g}", r["rss_peak_mb"] <= t["rss_mb"]),
            ("p99 change->alert s (mix)", a["mix_p99"], f"<= {t['p99_s']:g}",
             a["mix_p99"] is not None and a["mix_p99"] <= t["p99_s"])):
        out.append(f"{label:<28} {value!s:>8}  target {limit:<8} {'met' if ok else 'MISSED'}")
    return "\n".join(out)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--targets", type=int, default=10_000)
    p.add_argument("--hosts", type=int, default=50, help="loopback ports serving the fleet (default 50)")
    p.add_argument("--interval", default="15s", help="every target's interval (default 15s: more than the "
                   "daemon can do, so it never runs out of due targets)")
    p.add_argument("--daemons", type=int, default=1, help="`monitor run` processes sharing the targets (default 1)")
    p.add_argument("--warmup", type=float, default=30.0)
    p.add_argument("--window", type=float, default=60.0, help="seconds of the measured mix")
    p.add_argument("--kind-window", type=float, default=20.0, help="seconds of each kind alone (0: skip)")
    p.add_argument("--settle", type=float, default=5.0, help="seconds after switching kinds before measuring")
    p.add_argument("--drain", type=float, default=5.0, help="seconds for the last alerts before SIGTERM")
    p.add_argument("--keep", type=Path, help="work in DIR and keep it")
    p.add_argument("--reuse", action="store_true", help="with --keep: reuse a baseline already in DIR")
    p.add_argument("--json", action="store_true", help="print only the JSON result line")
    p.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.getLogger("aiohttp").setLevel(logging.CRITICAL)  # a send the daemon abandons is not news
    if args.serve:
        asyncio.run(serve(json.loads(args.serve.read_text())))
        return 0

    def log(message: str) -> None:
        if not args.json:
            print(message, file=sys.stderr, flush=True)

    try:
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            report = asyncio.run(benchmark(args, args.keep.resolve(), log))
        else:
            with tempfile.TemporaryDirectory() as tmp:
                report = asyncio.run(benchmark(args, Path(tmp), log))
    except HarnessError as exc:
        print(f"harness failed: {exc}", file=sys.stderr)
        return 1
    if not args.json:
        print(format_report(report))
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
