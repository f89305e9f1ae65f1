"""Past one machine: `monitor run` workers sharing one PostgreSQL.

  workers   sustained checks per second with 1, 2 and 3 workers sharing N (default 3,000)
            configured targets, the mix of bench/daemon_rate.py (70% 304, 20% chrome-only 200,
            10% a real edit), captures in the database (`snapshots = "database"`), the fleet's
            host gate on; the page server, the Slack receiver and the harness are
            bench/daemon_rate.py's. Each worker count starts from every target due, warms up,
            then a window is measured (checks answered by the server, CPU of the workers).
  one big   one worker over 100,000 configured targets, none checked before (all due at once,
            spread over the first minute): how long it takes to start, its peak RSS, and the
            dispatcher's cost per check (the time the daemon spends finding due targets,
            claiming them and releasing their claims, over the checks it made), measured inside
            the worker by timing its Daemon.dispatch.

PostgreSQL is a throwaway cluster on 127.0.0.1 (tests/test_postgres.py's PostgresServer). This is
a measurement, not a test: exit 0 whether or not the targets (RSS <= 500 MB) are met, 1 when the
harness fails.

Usage: python bench/workers.py [--targets 3000] [--workers 1,2,3] [--window 30] [--big 100000] [--json]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import daemon_rate as dr
from site_scale import _status_kib

REPO_ROOT = Path(__file__).resolve().parent.parent
MB = 1_000_000
RSS_LIMIT_MB = 500.0


# ---- one worker, instrumented (this file run with --worker CONFIG OUT) ---------------------------

def worker(config: str, out: str) -> int:
    """`monitor run` with its dispatcher timed; the totals written to OUT when it stops."""
    sys.path.insert(0, str(REPO_ROOT))
    from monitor import cli, scheduler, store

    totals = {"dispatch_s": 0.0, "dispatches": 0, "settle_s": 0.0, "release_s": 0.0, "checks": 0,
              "started_s": None}
    began = time.monotonic()

    def timed(func, key, count=None):
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return func(*args, **kwargs)
            finally:
                totals[key] += time.perf_counter() - start
                if count:
                    totals[count] += 1
        return wrapper

    scheduler.Daemon.dispatch = timed(scheduler.Daemon.dispatch, "dispatch_s", "dispatches")
    scheduler.Daemon._settle = timed(scheduler.Daemon._settle, "settle_s")
    store.Store.release_targets = timed(store.Store.release_targets, "release_s")
    run = scheduler.Daemon.run

    async def counted(self):
        totals["started_s"] = round(time.monotonic() - began, 1)  # config read, targets synced
        try:
            await run(self)
        finally:
            totals["checks"] = self.presence.checks

    scheduler.Daemon.run = counted
    try:
        cli.main(["run", "--config", config], standalone_mode=False)
    finally:
        Path(out).write_text(json.dumps(totals))
    return 0


# ---- the harness ----------------------------------------------------------------------------------

def start_postgres():
    sys.path.insert(0, str(REPO_ROOT / "tests"))
    from test_postgres import PostgresServer

    server = PostgresServer()
    server.start()
    with server.connect() as conn:  # room for 3 workers' pools and the harness
        conn.execute("ALTER SYSTEM SET max_connections = 200")
    server._run("pg_ctl restart", server.pg_ctl, "-D", str(server.data), "-l", str(server.log), "-w", "restart")
    return server


def config_for(work: Path, name: str, targets: int, ports: list[int], interval: str, webhook: str,
               database: str) -> Path:
    path = dr.write_config(work, targets, ports, interval, webhook)
    text = path.read_text().replace('database = "sqlite:///monitor.db"', f'database = "{database}"', 1)
    text = text.replace('snapshots = "snapshots"', 'snapshots = "database"', 1)
    mine = work / f"{name}.toml"
    mine.write_text(text)
    path.unlink()
    return mine


def make_all_due(pg, database: str) -> None:
    with pg.connect(database) as conn:
        conn.execute("UPDATE targets SET next_due_at = last_check_at, claimed_by = NULL, claimed_until = NULL")


async def until_live(pg, database: str, procs: list[subprocess.Popen], timeout: float = 300.0) -> None:
    """Wait for every worker's first heartbeat (its imports and config done: it is checking)."""
    deadline = time.monotonic() + timeout
    while True:
        with pg.connect(database) as conn:
            beating = {pid for (pid,) in conn.execute("SELECT pid FROM workers")}
        if beating >= {p.pid for p in procs}:
            return
        if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
            raise dr.HarnessError("a worker did not start")
        await asyncio.sleep(0.5)


def spawn(config: Path, out: Path, log) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, __file__, "--worker", str(config), str(out)], stdin=subprocess.DEVNULL,
                            stdout=log, stderr=log, cwd=config.parent, env=dr.child_env())


async def stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + dr.STOP_TIMEOUT
    while any(p.poll() is None for p in procs):
        if time.monotonic() > deadline:
            for p in procs:
                p.kill()
            raise dr.HarnessError("a worker did not stop within a minute of SIGTERM")
        await asyncio.sleep(0.2)


async def benchmark(args, work: Path, log) -> dict:
    pg = await asyncio.to_thread(start_postgres)
    ports = dr.free_ports(args.hosts)
    spec = work / "server.json"
    spec.write_text(json.dumps({"targets": max(args.targets, args.big), "seed": 7, "ports": ports,
                                "state": str(work / "edits.json")}))
    receiver = dr.Receiver()
    await receiver.start()
    logs = work / "logs"
    logs.mkdir(exist_ok=True)
    server = subprocess.Popen([sys.executable, dr.__file__, "--serve", str(spec)], stdout=subprocess.PIPE,
                              stderr=open(logs / "server.stderr", "wb"), cwd=REPO_ROOT)
    result: dict = {"targets": args.targets, "hosts": args.hosts, "interval": args.interval, "runs": []}
    try:
        if (await asyncio.to_thread(server.stdout.readline)).strip() != b"ready":
            raise dr.HarnessError("the page server did not start")
        base = f"http://127.0.0.1:{ports[0]}"
        if args.workers:
            database = pg.create_database("fleet")
            config = config_for(work, "fleet", args.targets, ports, args.interval, receiver.url, database)
            log(f"baseline: `monitor check` over {args.targets} targets on PostgreSQL ...")
            started = time.monotonic()
            done = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "monitor", "check", "--config",
                                                            str(config)], capture_output=True, cwd=work,
                                           env=dr.child_env())
            if done.returncode != 0:
                raise dr.HarnessError(f"monitor check exited {done.returncode}: {done.stderr.decode()[-3000:]}")
            result["baseline_s"] = round(time.monotonic() - started, 1)
            await dr.http("POST", f"{base}/mode/mix")
            for n in args.workers:
                make_all_due(pg, "fleet")
                log(f"{n} worker(s): warm-up {args.warmup:g} s, window {args.window:g} s ...")
                outs = [work / f"w{n}-{i}.json" for i in range(n)]
                with open(logs / f"workers-{n}.log", "wb") as wlog:
                    procs = [spawn(config, out, wlog) for out in outs]
                    try:
                        await until_live(pg, "fleet", procs)
                        await asyncio.sleep(args.warmup)
                        if any(p.poll() is not None for p in procs):
                            raise dr.HarnessError(f"a worker exited early; see {logs / f'workers-{n}.log'}")
                        window = dr.Window(f"{n} workers", {"monitor": [p.pid for p in procs], "server": [server.pid]},
                                           await dr.http("GET", f"{base}/stats"))
                        await asyncio.sleep(args.window)
                        run = window.close(await dr.http("GET", f"{base}/stats"))
                        run["rss_mb"] = [round((_status_kib(p.pid, "VmHWM") or 0) * 1024 / MB, 1) for p in procs]
                    finally:
                        await stop(procs)
                run["workers"] = n
                run["timers"] = [json.loads(o.read_text()) for o in outs if o.exists()]
                result["runs"].append(run)
        if args.big:
            log(f"one worker over {args.big} targets: writing the config ...")
            database = pg.create_database("big")
            config = config_for(work, "big", args.big, ports, "1d", receiver.url, database)
            out = work / "big.json"
            rss: list[int] = []
            with open(logs / "big.log", "wb") as blog:
                started = time.monotonic()
                proc = spawn(config, out, blog)
                try:
                    deadline = started + args.big_seconds
                    while time.monotonic() < deadline and proc.poll() is None:
                        rss.append(_status_kib(proc.pid, "VmRSS") or 0)
                        await asyncio.sleep(1.0)
                    hwm = _status_kib(proc.pid, "VmHWM") or 0
                finally:
                    await stop([proc])
            timers = json.loads(out.read_text())
            working = args.big_seconds - (timers["started_s"] or 0)
            result["big"] = {
                "targets": args.big, "seconds": args.big_seconds, "started_s": timers["started_s"],
                "checks": timers["checks"], "rate": round(timers["checks"] / working, 1) if working > 0 else None,
                "rss_peak_mb": round(max(hwm, max(rss, default=0)) * 1024 / MB, 1),
                "dispatches": timers["dispatches"],
                "dispatch_ms_per_check": round(1000 * (timers["dispatch_s"] - timers["settle_s"] + timers["release_s"])
                                               / timers["checks"], 3) if timers["checks"] else None,
                "timers": timers}
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait()
        await receiver.stop()
        await asyncio.to_thread(pg.stop)
    return result


def overhead(timers: list[dict]) -> float | None:
    checks = sum(t["checks"] for t in timers)
    spent = sum(t["dispatch_s"] - t["settle_s"] + t["release_s"] for t in timers)
    return round(1000 * spent / checks, 3) if checks else None


def format_report(r: dict) -> str:
    out = [f"{r['targets']} configured targets on {r['hosts']} loopback hosts, PostgreSQL, snapshots in the "
           f"database; interval {r['interval']}; mix 70% 304 / 20% chrome-only 200 / 10% real edit", "",
           f"{'workers':>7} {'checks/s':>9} {'workers CPU':>12} {'ms CPU/check':>13} {'dispatch ms/check':>18} "
           f"{'peak RSS MB':>14} {'others':>7}"]
    for run in r["runs"]:
        share = run["cpu_share"]
        out.append(f"{run['workers']:>7} {run['rate']:>9.1f} {share['monitor'] * 100:>11.0f}% "
                   f"{run['monitor_cpu_ms_per_check'] or 0:>13.2f} {overhead(run['timers']) or 0:>18.3f} "
                   f"{max(run['rss_mb']):>14.1f} {share['others'] * 100:>6.0f}%")
    big = r.get("big")
    if big:
        verdict = "met" if big["rss_peak_mb"] <= RSS_LIMIT_MB else "MISSED"
        out += ["", f"one worker, {big['targets']:,} targets: started in {big['started_s']} s; "
                f"{big['checks']} checks in the next {big['seconds'] - (big['started_s'] or 0):.0f} s "
                f"({big['rate']} /s); peak RSS {big['rss_peak_mb']} MB (target <= {RSS_LIMIT_MB:g}: {verdict}); "
                f"dispatch {big['dispatch_ms_per_check']} ms per check over {big['dispatches']} dispatches"]
    return "\n".join(out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--targets", type=int, default=3000)
    p.add_argument("--hosts", type=int, default=50)
    p.add_argument("--interval", default="10s", help="short enough that the workers never run out of due targets")
    p.add_argument("--workers", default="1,2,3", help="worker counts to measure, comma-separated ('' to skip)")
    p.add_argument("--warmup", type=float, default=15.0)
    p.add_argument("--window", type=float, default=30.0)
    p.add_argument("--big", type=int, default=100_000, help="targets of the one-worker run (0 to skip)")
    p.add_argument("--big-seconds", type=float, default=150.0, help="how long the one-worker run lasts")
    p.add_argument("--keep", type=Path, help="work in DIR (logs, configs) and keep it")
    p.add_argument("--json", action="store_true")
    p.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        return worker(*args.worker)
    args.workers = [int(n) for n in args.workers.split(",") if n.strip()]

    work = (args.keep or Path(tempfile.mkdtemp(prefix="monitor-workers-"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    try:
        report = asyncio.run(benchmark(args, work, lambda line: args.json or print(line, file=sys.stderr, flush=True)))
    except dr.HarnessError as exc:
        print(f"harness failed: {exc}", file=sys.stderr)
        return 1
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(report) if args.json else f"{format_report(report)}\n{json.dumps(report)}")
    return 0

if __name__ == "__main__":
    sys.exit(main())
